/**
 * Vite configuration of the labeling app (frontend/).
 *
 * The build goes to server/static/app/ (git-ignored), which server/spa.py serves at `/`:
 * index.html for every client route, hashed files under /assets/ with a year-long cache.
 * The app must run under a strict Content-Security-Policy (no 'unsafe-inline'), hence:
 * Svelte's component CSS is emitted to a .css file, and no asset is inlined as a data: URI.
 */
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { defineConfig } from 'vitest/config';

// where `galsearch serve` listens during `npm run dev`
const API_SERVER = process.env.GALSEARCH_API ?? 'http://127.0.0.1:5000';

export default defineConfig({
  root: 'frontend',
  base: '/',
  cacheDir: '../node_modules/.vite', // not inside frontend/, whose files are the build's sources
  plugins: [svelte({ configFile: false, emitCss: true })],
  build: {
    outDir: '../server/static/app',
    emptyOutDir: true,
    assetsDir: 'assets',
    assetsInlineLimit: 0,
    target: 'es2022',
    reportCompressedSize: true,
  },
  server: {
    proxy: { '/api': API_SERVER },
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
