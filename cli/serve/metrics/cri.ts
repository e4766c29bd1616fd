// CRI request metrics, as containerd's and CRI-O's operators know them: requests by service,
// method and gRPC code, latency by method, requests in flight.
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { RpcObserver } from "../../../cri/server";

const CODE_NAMES = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"];

export function criMetrics(registry: Registry): RpcObserver {
  const requests = new Counter({ name: "berth_cri_requests_total", help: "CRI and berth gRPC requests by service, method and status code.", labelNames: ["service", "method", "code"], registers: [registry] });
  const duration = new Histogram({
    name: "berth_cri_request_duration_seconds",
    help: "Time to answer a gRPC request, by method.",
    labelNames: ["method"],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const inFlight = new Gauge({ name: "berth_cri_requests_in_flight", help: "gRPC requests being served.", labelNames: ["service"], registers: [registry] });
  for (const service of ["RuntimeService", "ImageService", "Berth"]) inFlight.set({ service }, 0);
  return {
    begin(service, method) {
      const short = service.replace(/^runtime\.v1\.|^berth\.v1\./, "");
      inFlight.inc({ service: short });
      const end = duration.startTimer({ method });
      return (code) => {
        inFlight.dec({ service: short });
        end();
        requests.inc({ service: short, method, code: CODE_NAMES[code] ?? String(code) });
      };
    },
  };
}
