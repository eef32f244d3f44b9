// The dashboard (web/): Preact + uPlot, built by Vite into dist/web, which the package ships and
// the HTTP server serves as static files (createHttpApp's staticDir). `npm run build:web`.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  base: './',
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    // The whole dashboard is a few tens of kB; anything above this is a regression.
    chunkSizeWarningLimit: 200,
  },
});
