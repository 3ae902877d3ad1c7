/**
 * Performance measures the app leaves for the browser tests (and the devtools) to read.
 *
 * - {@link FIRST_GRID_MEASURE}: from the last navigation (a `galsearch:navigate` mark, or the
 *   page load itself when there is none) to the first page of cutouts fully shown, every image
 *   decoded. Target: under 1 s on localhost.
 * - {@link KEY_FOCUS_MEASURE}: from a key press in the grid (the event's timestamp) to the frame
 *   that shows the focus moved. Target: under 50 ms.
 */

import { NAVIGATION_MARK } from './lib/router.svelte.ts';

export const FIRST_GRID_MEASURE = 'galsearch:first-grid';
export const KEY_FOCUS_MEASURE = 'galsearch:key-focus';

/** Start of the navigation now being shown (ms since the page's time origin). */
export function navigationStart(): number {
  const marks = performance.getEntriesByName(NAVIGATION_MARK, 'mark');
  return marks.length ? (marks[marks.length - 1]?.startTime ?? 0) : 0;
}

export function measureSince(name: string, start: number): void {
  performance.measure(name, { start, end: performance.now() });
}

/** Measure from a key event to the next frame (call after moving the focus). */
export function measureKeyToFrame(event: KeyboardEvent): void {
  const start = event.timeStamp;
  requestAnimationFrame(() => measureSince(KEY_FOCUS_MEASURE, start));
}
