import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { main } from "../../cli/main";
import { loadStack } from "../../loader/stack-config";
import { renderTuneSh } from "../../components";

const ROOT = join(__dirname, "..", "..");

function capture(): Writable & { text: () => string } {
  const chunks: string[] = [];
  const w = new Writable({ write: (c, _e, cb) => (chunks.push(String(c)), cb()) }) as Writable & { text: () => string };
  w.text = () => chunks.join("");
  return w;
}

function cli(args: string[]): { code: number; out: string; err: string } {
  const out = capture();
  const err = capture();
  const code = main(args, out, err);
  if (typeof code !== "number") throw new Error("render is synchronous");
  return { code, out: out.text(), err: err.text() };
}

const tree = (dir: string): Record<string, string> =>
  Object.fromEntries(
    readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((d) => d.isFile())
      .map((d) => [join(d.parentPath, d.name).slice(dir.length + 1), readFileSync(join(d.parentPath, d.name), "utf8")]),
  );

describe("edgetune render", () => {
  it("renders the local stack: tune.sh (executable), sysctl.d and the plan", () => {
    const out = mkdtempSync(join(tmpdir(), "edgetune-render-"));
    const r = cli(["render", "--stack", "local", "--out", out, "--root", ROOT]);
    expect(r.code, r.err).toBe(0);
    const files = tree(out);
    expect(Object.keys(files)).toEqual(expect.arrayContaining(["PLAN.md", "lab/etc/sysctl.d/99-zz-edgetune.conf", "lab/tune.sh"]));
    expect(files["lab/tune.sh"]).toBe(renderTuneSh(loadStack("local", ROOT).nodeGroups[0].profile));
    expect(statSync(join(out, "lab/tune.sh")).mode & 0o111).not.toBe(0);
    expect(files["lab/etc/sysctl.d/99-zz-edgetune.conf"]).toMatch(/^net\.core\.somaxconn = 65535$/m);
    expect(files["lab/etc/sysctl.d/99-zz-edgetune.conf"]).toMatch(
      /^net\.ipv4\.ip_local_reserved_ports = 80,443,8404-8405,10250,10256,30000-32767$/m,
    );
    expect(files["PLAN.md"]).toMatch(/ephemeral 1024-65535, reserved 80,443,8404-8405,10250,10256,30000-32767/);
  });

  it("renders every shipped stack without a port-range warning", () => {
    const stacks = readdirSync(join(ROOT, "stacks")).flatMap((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1] ?? []);
    expect(stacks).toEqual(expect.arrayContaining(["bench", "dev", "local", "prod"]));
    for (const stack of stacks) {
      const r = cli(["render", "--stack", stack, "--out", mkdtempSync(join(tmpdir(), `edgetune-render-${stack}-`)), "--root", ROOT]);
      expect(r.code, `${stack}: ${r.err}`).toBe(0);
      expect(
        r.err.split("\n").filter((l) => /^warning: .*(port|NodePort)/i.test(l)),
        stack,
      ).toEqual([]);
    }
  });

  it("is deterministic: two renders give the same bytes", () => {
    const a = mkdtempSync(join(tmpdir(), "edgetune-render-a-"));
    const b = mkdtempSync(join(tmpdir(), "edgetune-render-b-"));
    expect(cli(["render", "--stack", "local", "--out", a, "--root", ROOT]).code).toBe(0);
    expect(cli(["render", "--stack", "local", "--out", b, "--root", ROOT]).code).toBe(0);
    expect(tree(a)).toEqual(tree(b));
  });

  it("a bad stack file gets one error naming every problem, and writes nothing", () => {
    const root = mkdtempSync(join(tmpdir(), "edgetune-bad-"));
    mkdirSync(join(root, "stacks"));
    writeFileSync(join(root, "Pulumi.yaml"), readFileSync(join(ROOT, "Pulumi.yaml")));
    writeFileSync(
      join(root, "stacks/Pulumi.bad.yaml"),
      [
        "config:",
        "  edgetune:profiles:",
        "    edge:",
        "      extends: recommended",
        "      sysctls:",
        '        net.core.somaxconn: "many"',
        "      limits: { nofileHard: 9000000 }",
        "  edgetune:nodeGroups:",
        "    - { name: lab, target: local, profile: nope }",
      ].join("\n"),
    );
    const out = join(root, "out");
    const r = cli(["render", "--stack", "bad", "--out", out, "--root", root]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/invalid stack config "bad": 4 problems/);
    expect(r.err).toMatch(/nodeGroups\[0\]\.target: the local lab runs the stack's proxy: add an edgetune:proxy section/);
    expect(r.err).toMatch(/profiles\.edge\.sysctls\["net\.core\.somaxconn"\]: got "many"; allowed: an integer/);
    expect(r.err).toMatch(/profiles\.edge\.limits\.nofileHard: got 9000000; must not exceed fs\.nr_open/);
    expect(r.err).toMatch(/nodeGroups\[0\]\.profile: got "nope"; allowed: one of the profiles edge/);
    expect(existsSync(out)).toBe(false);
  });

  it("rejects missing options and unknown stacks with usage errors", () => {
    expect(cli(["render", "--stack", "local"]).code).toBe(2);
    expect(cli(["frobnicate"]).code).toBe(2);
    const r = cli(["render", "--stack", "nosuch", "--out", "/tmp/x", "--root", ROOT]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/unknown stack "nosuch"/);
  });

  it("lab: refuses an unknown variant or stack before touching the machine", async () => {
    const run = async (args: string[]) => {
      const out = capture();
      const err = capture();
      const code = await main(args, out, err);
      return { code, err: err.text() };
    };
    const v = await run(["lab", "--variants", "rps-on,warp", "--root", ROOT]);
    expect(v).toEqual({
      code: 2,
      err: "edgetune lab: --variants warp: not in the stack's lab.variants; allowed: notsent-lowat, rps-on, offloads-off, none\n",
    });
    const s = await run(["lab", "--stack", "nosuch", "--variants", "none", "--root", ROOT]);
    expect(s.code).toBe(1);
    expect(s.err).toMatch(/unknown stack "nosuch"/);
  });

  it("Pulumi.yaml defaults are overridden by the stack file, other namespaces ignored", async () => {
    const { readStackConfig } = await import("../../loader/stack-config");
    const root = mkdtempSync(join(tmpdir(), "edgetune-cfg-"));
    mkdirSync(join(root, "stacks"));
    writeFileSync(
      join(root, "Pulumi.yaml"),
      "name: edgetune\nruntime: nodejs\nstackConfigDir: stacks\nconfig:\n  edgetune:a: { type: string, default: from-project }\n  edgetune:b: { default: 1 }\n",
    );
    writeFileSync(join(root, "stacks/Pulumi.s.yaml"), "config:\n  edgetune:a: from-stack\n  aws:region: eu-west-1\n");
    expect(readStackConfig("s", root)).toEqual({ a: "from-stack", b: 1 });
  });
});
