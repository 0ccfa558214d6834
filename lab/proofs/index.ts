/**
 * The proof scenarios, by name. Each lives in its own module beside this one and is added
 * here; the runner and the CLI know them only through this registry.
 */
import type { ProofScenarioName } from "../../components/bench/result";
import { changeUnderLoad } from "./change-under-load";
import { deadPeer } from "./dead-peer";
import { finWait } from "./fin-wait";
import { reuseport } from "./reuseport";
import type { ProofScenario } from "./types";
import { connHold } from "./conn-hold";
import { softnet } from "./softnet";
import { synFlood } from "./syn-flood";

export const PROOFS: Partial<Record<ProofScenarioName, ProofScenario>> = {
  "conn-hold": connHold,
  softnet,
  "syn-flood": synFlood,
  "fin-wait": finWait,
  "dead-peer": deadPeer,
  reuseport,
  "change-under-load": changeUnderLoad,
};

export type { ProofContext, ProofScenario } from "./types";
