/**
 * Proof scenarios: lab-only scenarios that each show one setting's effect with their own
 * driver (an idle-connection holder, a SYN flood, a reload loop...), deciding by counters
 * where they can. The runner's proof phase (./phase.ts) gives each one freshly created,
 * tuned namespaces per profile; the scenario measures and returns BenchResults with its
 * figures in `measures`.
 */
import type { BenchResult, ProofScenarioName } from "../../components/bench/result";
import type { LabAddresses, LabTopology } from "../../components/lab/topology";
import type { ProxySpec } from "../../components/proxy/haproxy";
import type { ResolvedProfile } from "../../components/tuning/types";

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ProofContext {
  /** Profile label: "baseline" or "tuned". */
  label: string;
  profile: ResolvedProfile;
  /** 0-based repetition. */
  run: number;
  quick: boolean;
  /** Overrides the scenario's own duration (seconds) when set (`edgetune lab --duration`). */
  durationSeconds?: number;
  /** The lab's working directory (lab.sh, rendered configs, scripts). */
  labDir: string;
  a: LabAddresses;
  topology: LabTopology;
  spec: ProxySpec;
  /** haproxy.cfg rendered for this profile (what `lab.sh proxy-start` started, unless startsProxy). */
  haproxyCfg: string;
  /** This profile's tune.sh (already applied to the namespaces when run() is called). */
  tuneSh: string;
  /** A lab.sh step (up, down, tune, proxy-start, proxy-stop, ...); throws a LabError when it fails. */
  step(...args: string[]): ExecResult;
  /** Runs argv inside namespace ns (no shell between), to completion or timeoutMs (then killed, code 124). */
  exec(ns: string, argv: string[], opts?: { timeoutMs?: number; input?: string }): ExecResult;
  progress(line: string): void;
}

export interface ProofScenario {
  name: ProofScenarioName;
  summary: string;
  /** What it is expected to show, for the report. */
  shows: string;
  /** Profile keys (catalog sysctl names, `limits.nofile`, proxy options...) whose effect it shows. */
  settings: string[];
  /** Included in `--quick` runs (with its quick sizes); false: full runs only (e.g. dead-peer is long). */
  inQuick: boolean;
  /** Debian tools it needs beyond the lab's own: tool → package, for a clear refusal. */
  tools?: Record<string, string>;
  /** true: the phase does not start HAProxy; the scenario starts and stops the proxies itself. */
  startsProxy?: boolean;
  /** Namespaces are up and tuned (and HAProxy running unless startsProxy); the phase tears down after. */
  run(ctx: ProofContext): BenchResult[];
}
