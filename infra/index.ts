import * as pulumi from "@pulumi/pulumi";
import { profileDigest } from "../components/tuning/render";
import { loadStack } from "./stack-config";
import { join } from "node:path";

// The stack config is validated once, before any resource is registered.
const plan = loadStack(pulumi.getStack(), join(__dirname, ".."));

/** Per node group: the target and the digest of the profile it renders. */
export const nodeGroups = Object.fromEntries(plan.nodeGroups.map((g) => [g.name, { target: g.target, profile: g.profile.name, digest: profileDigest(g.profile) }]));

// Benchmark stacks: run the suite and export its verdict for scripts/check-bench.js.
import { BenchmarkSuite } from "../components/bench/benchmark-suite";
const benchSuite = plan.benchmark ? new BenchmarkSuite("bench", plan.benchmark) : undefined;
export const benchmark = benchSuite ? { passed: benchSuite.passed, violations: benchSuite.violations, results: benchSuite.results } : undefined;
