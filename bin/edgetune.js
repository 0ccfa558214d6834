#!/usr/bin/env node
// In a checkout the TypeScript sources run through tsx; an installed package runs the compiled dist/.
const { existsSync } = require("node:fs");
const { join } = require("node:path");
const source = join(__dirname, "..", "cli", "main.ts");
let cli;
if (existsSync(source)) {
  require("tsx/cjs");
  cli = require(source);
} else {
  cli = require(join(__dirname, "..", "dist", "cli", "main.js"));
}
Promise.resolve(cli.main(process.argv.slice(2))).then((code) => {
  process.exitCode = code;
});
