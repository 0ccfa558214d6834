import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { DEFAULT_TOPOLOGY, renderLabScript, type LabTopology } from "../../components";
import { shAssignments } from "../../components/shell";
import { describeSystem, run } from "../helpers/system";

const STEPS = join(__dirname, "..", "..", "components", "lab", "lab.sh");
const SHELLS = [["sh"], ["dash"], ["busybox", "sh"]];

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "edgetune-labsh-"));
  dirs.push(d);
  return d;
};
const write = (dir: string, script: string) => {
  const path = join(dir, "lab.sh");
  writeFileSync(path, script, { mode: 0o755 });
  return path;
};

// A prefix no other lab on this machine uses: `status` reports its namespaces absent.
const OTHER: LabTopology = { ...DEFAULT_TOPOLOGY, prefix: "et-labsh-test", subnet: 7, queues: 2, iperfPort: 6001 };

/** The header renderLabScript writes: the lines after the usage comment, up to the blank line before the steps. */
const headerOf = (script: string) => script.slice(0, script.indexOf("\n\n")).split("\n").slice(2);

describeSystem(
  "lab.sh is portable POSIX sh",
  ["shellcheck", "dash", "busybox"],
  () => {
    for (const [name, t] of Object.entries({ default: DEFAULT_TOPOLOGY, other: OTHER })) {
      it(`${name} topology: the rendered script is shellcheck clean and parses under dash and busybox`, () => {
        const script = write(tempDir(), renderLabScript(t));
        // The rendered script, not the steps alone, is what shows a variable the header does not assign.
        const sc = run("shellcheck", ["-s", "sh", "-S", "style", script]);
        expect(sc.stdout + sc.stderr, "shellcheck").toBe("");
        expect(sc.code).toBe(0);
        expect(run("dash", ["-n", script]).code).toBe(0);
        expect(run("busybox", ["sh", "-n", script]).code).toBe(0);
      });
    }

    it("the steps file is shellcheck clean on its own (its directive names what the header assigns)", () => {
      const sc = run("shellcheck", ["-S", "style", STEPS]);
      expect(sc.stdout + sc.stderr, "shellcheck").toBe("");
      expect(sc.code).toBe(0);
    });

    it("is the header, then the steps file byte for byte; every topology value lives in the header", () => {
      const script = renderLabScript(OTHER);
      const steps = readFileSync(STEPS, "utf8");
      expect(script.endsWith(`\n\n${steps}`)).toBe(true);
      expect(steps).not.toMatch(/10\.7\.|et-labsh-test|6001/);
      expect(headerOf(script)).toEqual([
        "NS_CLIENT='et-labsh-test-client'",
        "NS_PROXY='et-labsh-test-proxy'",
        "NS_BACKEND='et-labsh-test-backend'",
        "QUEUES='2'",
        "IPERF_PORT='6001'",
        "RUN_DIR='/run/et-labsh-test-lab'",
        "CLIENT_ADDR='10.7.1.1'",
        "PROXY_ADDR='10.7.1.2'",
        "PROXY_BACKEND_ADDR='10.7.2.1'",
        "BACKEND_ADDR='10.7.2.2'",
        "CLIENT_DIRECT_ADDR='10.7.3.1'",
        "BACKEND_DIRECT_ADDR='10.7.3.2'",
        "CLIENT_PROXY_NET='10.7.1.0/24'",
        "PROXY_BACKEND_NET='10.7.2.0/24'",
      ]);
    });

    it("runs under sh, dash and busybox: status names this topology's namespaces; usage errors exit 2", () => {
      const dir = tempDir();
      const script = write(dir, renderLabScript(OTHER));
      const env = { ...process.env, LAB_DIR: dir };
      for (const shell of SHELLS) {
        const sh = (...args: string[]) => run(shell[0], [...shell.slice(1), script, ...args], { env, cwd: dir });
        const status = sh("status");
        expect(status.code, shell.join(" ")).toBe(0);
        expect(status.stdout).toBe(
          [
            "namespace et-labsh-test-client absent",
            "namespace et-labsh-test-proxy absent",
            "namespace et-labsh-test-backend absent",
            "nginx stopped",
            "iperf3 stopped",
            "haproxy stopped",
            "",
          ].join("\n"),
        );
        const usage = sh();
        expect(usage.code).toBe(2);
        expect(usage.stderr).toBe("usage: lab.sh up|tune SCRIPT|untune|proxy-start CFG|proxy-stop|down|status\n");
        const tune = sh("tune", join(dir, "absent-tune.sh"));
        expect(tune.code).toBe(2);
        expect(tune.stderr).toBe(`lab: tune: no such script: ${join(dir, "absent-tune.sh")}\n`);
      }
    });
  },
  false,
);

describeSystem(
  "lab.sh: hostile topology values never execute",
  ["sh", "dash", "busybox"],
  () => {
    const hostile = [
      "'",
      "$(touch CANARY)",
      "`touch CANARY`",
      "; touch CANARY",
      "&& touch CANARY",
      "a\ntouch CANARY",
      "'; touch CANARY; '",
      "\\'$(touch CANARY)",
    ];

    it("renderLabScript rejects each one, in every field, before rendering anything", () => {
      for (const h of hostile) {
        expect(() => renderLabScript({ ...DEFAULT_TOPOLOGY, prefix: `x${h}` }), h).toThrow(/invalid lab topology: prefix: /);
        for (const k of ["queues", "subnet", "iperfPort"] as const) {
          expect(() => renderLabScript({ ...DEFAULT_TOPOLOGY, [k]: h as never }), `${k} ${h}`).toThrow(
            new RegExp(`invalid lab topology: .*${k}: `),
          );
        }
      }
    });

    it("every header line is NAME='value': no value reaches the script unquoted", () => {
      for (const t of [DEFAULT_TOPOLOGY, OTHER])
        for (const line of headerOf(renderLabScript(t))) expect(line).toMatch(/^[A-Z_][A-Z0-9_]*='[^']*'$/);
    });

    it("quoting alone keeps them literal: the steps, under a header of hostile values (validation bypassed), print them and run nothing", () => {
      const dir = tempDir();
      const canary = join(dir, "CANARY");
      const steps = readFileSync(STEPS, "utf8");
      for (const h of hostile.map((v) => v.replace(/CANARY/g, canary))) {
        // What renderLabScript would write if topologyProblems let these through. `status` only reads.
        const script = write(
          dir,
          `#!/bin/sh\n${shAssignments({ NS_CLIENT: h, NS_PROXY: h, NS_BACKEND: h, QUEUES: h, IPERF_PORT: h, RUN_DIR: h })}\n\n${steps}`,
        );
        for (const shell of SHELLS) {
          const r = run(shell[0], [...shell.slice(1), script, "status"], { env: { ...process.env, LAB_DIR: dir }, cwd: dir });
          expect(r.code, `${shell.join(" ")} ${h}`).toBe(0);
          expect(r.stdout.split("\nnginx ")[0]).toBe(`namespace ${h} absent\n`.repeat(3).slice(0, -1));
        }
      }
      expect(existsSync(canary)).toBe(false);
    });

    it("a header variable name that is not a plain shell name is refused", () => {
      expect(() => shAssignments({ "X;touch CANARY": "1" })).toThrow(/not a shell variable name/);
    });
  },
  false,
);
