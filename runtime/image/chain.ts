// Chain IDs (OCI image spec, config.md "Layer ChainID"): the identity of a layer *stack*, so a
// layer unpacked on a different base gets a different snapshot even if its DiffID is the same.
//   ChainID(L0) = DiffID(L0)
//   ChainID(L0|...|Ln) = sha256(ChainID(L0|...|Ln-1) + " " + DiffID(Ln))
import { createHash } from "node:crypto";
import { InvalidArgumentError } from "../errors";

const DIGEST = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

export function chainIds(diffIds: string[]): string[] {
  const out: string[] = [];
  for (const [i, diffId] of diffIds.entries()) {
    if (!DIGEST.test(diffId)) throw new InvalidArgumentError(`diff_ids[${i}] "${diffId}" is not a digest (algorithm:hex)`);
    const prev = out[i - 1];
    out.push(prev === undefined ? diffId : `sha256:${createHash("sha256").update(`${prev} ${diffId}`).digest("hex")}`);
  }
  return out;
}
