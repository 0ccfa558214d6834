// Runs the project's Pulumi program the way `pulumi up`/`preview` does, minus the engine:
// the language host's working directory and entry point computed from Pulumi.yaml's `main`
// (a port of the CLI's getPwdMain), then the SDK's own `cmd/run` entry point with the
// arguments the Node.js language host passes (`--pwd <dir> <entry>`), against Pulumi's mocks.
// Everything else — which module is the program, TypeScript registration, the root Stack
// resource and its outputs — is the SDK's own code.
//
// usage: node sdk-program-child.cjs <request.json> <result.json>
//   request: { root, stack, preview, config: { "edgetune:key": "text" }, secretKeys: [...] }
//   result:  { exitCode, pwd, entry, program, registered: [{ type, name, inputs, parent, aliases }], outputs }
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const [requestFile, resultFile] = process.argv.slice(2);
const req = JSON.parse(fs.readFileSync(requestFile, "utf8"));
const sdk = (p) => require(path.join(req.root, "node_modules", "@pulumi", "pulumi", p));
const pulumi = sdk("");
const yaml = require(path.join(req.root, "node_modules", "js-yaml"));

/** pulumi/pkg/cmd/pulumi: getPwdMain — how the CLI turns `main` into the program's pwd and entry point. */
function pwdMain(root, main) {
  if (!main) return { pwd: root, entry: "." };
  if (path.isAbsolute(main)) throw new Error("project 'main' must be a relative path");
  const full = path.join(root, main);
  if (!full.startsWith(path.resolve(root))) throw new Error("project 'main' must be a subfolder");
  return fs.statSync(full).isDirectory() ? { pwd: full, entry: "." } : { pwd: path.dirname(full), entry: path.basename(full) };
}

const project = yaml.load(fs.readFileSync(path.join(req.root, "Pulumi.yaml"), "utf8"));
const { pwd, entry } = pwdMain(req.root, project.main);
const SUMMARY = "summary: status=applied changed=12 unchanged=3 skipped=0 failed=0 reboot_required=0 profile=p digest=sha256:0";
const registered = [];

pulumi.runtime.setMocks(
  {
    newResource: (a) => {
      registered.push({ type: a.type, name: a.name, inputs: a.inputs });
      const state = { ...a.inputs };
      if (a.type === "aws:ec2/launchTemplate:LaunchTemplate") state.latestVersion = 3;
      if (a.type === "aws:autoscaling/group:Group") state.name = `${a.name}-name`;
      if (a.type === "command:remote:Command" || (a.type === "command:local:Command" && !a.name.endsWith("-collect")))
        state.stdout = `changed x\n${SUMMARY}\n`;
      return { id: `${a.name}-id`, state };
    },
    call: (a) => a.inputs,
  },
  project.name,
  req.stack,
  req.preview !== false,
);
pulumi.runtime.setAllConfig(req.config, req.secretKeys);
const { MockMonitor } = sdk("runtime/mocks");
// The mock monitor has no shutdown handshake; the SDK calls it when the program's work is done.
MockMonitor.prototype.signalAndWaitForShutdown = (_req, callback) => callback(null, {});
// What the engine gets besides the inputs, which the mocks' newResource does not see: the
// parent and the aliases (how a resource moved or renamed keeps its state).
const registration = new Map();
const registerResource = MockMonitor.prototype.registerResource;
MockMonitor.prototype.registerResource = function (r, callback) {
  registration.set(`${r.getType()}::${r.getName()}`, {
    parent: r.getParent() || null,
    aliases: [...(r.getAliasurnsList?.() ?? []), ...(r.getAliasesList?.() ?? []).map((a) => a.toObject())],
  });
  return registerResource.call(this, r, callback);
};

// Registered after the SDK's own exit handler (below), which sets the exit code for a failed program.
function onExit(code) {
  const monitor = sdk("runtime/settings").getMonitor();
  const stackState = [...monitor.resources.values()].find((r) => r.urn.includes("::pulumi:pulumi:Stack::"))?.state;
  const outputs = stackState ? sdk("runtime/rpc").deserializeProperties(stackState) : undefined;
  const loaded = Object.keys(require.cache).filter((f) => !f.includes(`${path.sep}node_modules${path.sep}`));
  // The first module of the project after this script: what the SDK loaded as the program.
  const program = loaded.find((f) => f !== __filename && f.startsWith(path.resolve(req.root) + path.sep)) ?? null;
  const withMeta = registered.map((r) => ({ ...r, ...registration.get(`${r.type}::${r.name}`) }));
  fs.writeFileSync(
    resultFile,
    JSON.stringify({ exitCode: process.exitCode ?? code, pwd, entry, program, registered: withMeta, outputs: outputs ?? null }),
  );
}

process.env.PULUMI_NODEJS_TYPESCRIPT = String(project.runtime?.options?.typescript ?? true);
if (project.runtime?.options?.tsconfig) process.env.PULUMI_NODEJS_TSCONFIG_PATH = project.runtime.options.tsconfig;
process.argv = [
  process.argv[0],
  path.join(req.root, "node_modules/@pulumi/pulumi/cmd/run"),
  "--monitor",
  "mock",
  "--project",
  project.name,
  "--stack",
  req.stack,
  "--pwd",
  pwd,
  ...(req.preview !== false ? ["--dry-run"] : []),
  entry,
];
require(path.join(req.root, "node_modules/@pulumi/pulumi/cmd/run"));
process.on("exit", onExit);
if (process.env.ET_DEBUG_HANDLES)
  setTimeout(() => {
    console.error(
      process._getActiveHandles().map((h) => h.constructor.name + (h._idleTimeout ? ":" + h._idleTimeout : "")),
      process._getActiveRequests().length,
    );
  }, 4000).unref();
