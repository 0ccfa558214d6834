import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { renderTunerLoop, renderTunerObjects, STATUS_FILE } from "../../components/nodes/k8s-tuner";
import { resolveProfile } from "../../components/tuning/profile";
import { describeSystem, run } from "../helpers/system";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** The loop itself runs for real in test/kernel/tuner-loop.test.ts; this is what needs no namespace. */
describeSystem(
  "the tuner loop (tuner.sh) is portable POSIX sh",
  ["shellcheck", "dash", "busybox"],
  () => {
    it("is shellcheck clean and parses under dash and busybox", () => {
      const dir = mkdtempSync(join(tmpdir(), "edgetune-tunersh-"));
      dirs.push(dir);
      const script = join(dir, "tuner.sh");
      writeFileSync(script, renderTunerLoop());
      const sc = run("shellcheck", ["-s", "sh", "-S", "style", script]);
      expect(sc.stdout + sc.stderr, "shellcheck").toBe("");
      expect(sc.code).toBe(0);
      expect(run("dash", ["-n", script]).code).toBe(0);
      expect(run("busybox", ["sh", "-n", script]).code).toBe(0);
    });

    it("without STATUS_FILE it refuses to start, naming it, before touching anything", () => {
      const dir = mkdtempSync(join(tmpdir(), "edgetune-tunersh-"));
      dirs.push(dir);
      const script = join(dir, "tuner.sh");
      writeFileSync(script, renderTunerLoop());
      // A tune.sh that would leave a mark if the loop got as far as applying.
      writeFileSync(join(dir, "tune.sh"), `touch ${join(dir, "APPLIED")}\n`);
      const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, TUNE_SH: join(dir, "tune.sh"), NODE_NAME: "n" };
      for (const shell of [["sh"], ["dash"], ["busybox", "sh"]]) {
        const r = run(shell[0], [...shell.slice(1), script], { env, timeout: 10_000 });
        expect(r.code, shell.join(" ")).not.toBe(0);
        expect(r.stderr).toMatch(/STATUS_FILE: is not set \(the pod spec sets it\)/);
      }
      expect(existsSync(join(dir, "APPLIED"))).toBe(false);
    });
  },
  false,
);

it("the DaemonSet hands the loop its status file, and probes readiness with the loop's own `ready`", () => {
  const objs = renderTunerObjects(resolveProfile("p", { extends: "baseline" }), { name: "g", image: "ghcr.io/o/edgetune-tuner:0.1.0" });
  const container = (objs.daemonSet as any).spec.template.spec.containers[0];
  expect(container.env).toContainEqual({ name: "STATUS_FILE", value: STATUS_FILE });
  expect(container.command).toEqual(["/bin/sh", "/edgetune/tuner.sh"]);
  expect(container.readinessProbe.exec.command).toEqual(["/bin/sh", "/edgetune/tuner.sh", "ready"]);
  expect((objs.configMap.data as Record<string, string>)["tuner.sh"]).toBe(renderTunerLoop());
});
