/**
 * The proof scenarios, by name. Each lives in its own module beside this one and is added
 * here; the runner and the CLI know them only through this registry.
 */
import type { ProofScenarioName } from "../../components/bench/result";
import type { ProofScenario } from "./types";

export const PROOFS: Partial<Record<ProofScenarioName, ProofScenario>> = {};

export type { ProofContext, ProofScenario } from "./types";
