/**
 * What the labeling grid shows per tile, and the facts about its layout that keyboard moves
 * need. Pure functions, so they are unit-tested without a browser.
 */

import type { LabelValue } from '../api';
import { describeValue } from './labels.svelte.ts';

/** One cutout of a page: the object and, for candidates, the score that ordered it. */
export interface GridItem {
  object_id: number;
  score: number | null;
  score_kind: 'similarity' | 'probe' | null;
}

export const LABEL_MARKS: Record<LabelValue, { symbol: string; text: string }> = {
  accept: { symbol: '✓', text: 'Accept' },
  reject: { symbol: '✗', text: 'Reject' },
  unsure: { symbol: '?', text: 'Unsure' },
};

export function formatScore(item: GridItem): string {
  if (item.score === null || item.score_kind === null) return '';
  return `${item.score_kind === 'probe' ? 'probe' : 'sim.'} ${item.score.toFixed(3)}`;
}

/** The accessible name of a tile: what a screen reader says when it gets focus. */
export function tileName(item: GridItem, value: LabelValue | null, pending: boolean,
                         error: string | null): string {
  const parts = [`Object ${item.object_id}`, describeValue(value)];
  if (item.score !== null && item.score_kind) {
    parts.push(`${item.score_kind} score ${item.score.toFixed(3)}`);
  }
  if (pending) parts.push('saving');
  if (error) parts.push(`not saved: ${error}`);
  return parts.join(', ');
}

/** How many tiles the first row of a wrapped grid holds (by their vertical position). */
export function columnCount(tiles: ArrayLike<{ offsetTop: number }>): number {
  const first = tiles[0];
  if (!first) return 1;
  let count = 0;
  for (let i = 0; i < tiles.length; i++) {
    if (tiles[i]?.offsetTop !== first.offsetTop) break;
    count++;
  }
  return Math.max(1, count);
}

/** Brightness steps of the stretch control: 2^(step / 4), from 1/4 to 4 times. */
export const BRIGHTNESS_STEPS = { min: -8, max: 8 };

export function brightnessOf(step: number): number {
  return Math.round(2 ** (step / 4) * 100) / 100;
}
