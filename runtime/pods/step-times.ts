// Where an RPC's time goes, logged with it ("container created", "container removed"): each step's
// duration in ms since the previous one. bench/cri.ts reads them back from the daemon's log.
export interface StepTimes {
  /** Ends the step called `name`. */
  step(name: string): void;
  readonly steps: Record<string, number>;
}

export function stepTimes(): StepTimes {
  const steps: Record<string, number> = {};
  let mark = performance.now();
  return {
    steps,
    step(name) {
      const now = performance.now();
      steps[name] = Math.round((now - mark) * 10) / 10;
      mark = now;
    },
  };
}
