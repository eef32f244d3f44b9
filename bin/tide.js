#!/usr/bin/env node
// Thin launcher: the CLI lives in dist/cli/main.js (built by `npm ci` via the prepare script).
import { installProcessHandlers, main } from '../dist/cli/main.js';
installProcessHandlers();
process.exitCode = await main(process.argv.slice(2));
