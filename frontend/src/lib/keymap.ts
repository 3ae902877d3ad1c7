/**
 * The labeling grid's keyboard map, and how a move changes the focused tile.
 *
 * | key | action |
 * |---|---|
 * | a, r, u | accept, reject, unsure (the focused object) |
 * | 0 or Backspace | clear the focused object's label |
 * | arrows | move focus (up and down by one row) |
 * | Home, End | first, last tile of the page |
 * | space, Enter | open the detail of the focused object |
 * | Escape | close the detail |
 * | z | undo your last label change |
 * | n | next page |
 * | o | reorder now by the newest probe (when one is newer than the page) |
 * | ? | show or hide the key list |
 *
 * Keys with Ctrl, Alt or Meta are left to the browser (Ctrl+R must still reload), and keys
 * typed into a form field never reach the map (see {@link isTypingTarget}).
 */

import type { LabelValue } from '../api';

export type GridAction =
  | { kind: 'label'; value: LabelValue | null }
  | { kind: 'move'; to: 'left' | 'right' | 'up' | 'down' | 'first' | 'last' }
  | { kind: 'detail' }
  | { kind: 'close' }
  | { kind: 'undo' }
  | { kind: 'next-page' }
  | { kind: 'reorder' }
  | { kind: 'help' };

export type Move = Extract<GridAction, { kind: 'move' }>['to'];

/** The parts of a KeyboardEvent the map reads. */
export interface KeyPress {
  key: string;
  ctrlKey?: boolean;
  altKey?: boolean;
  metaKey?: boolean;
}

const KEYS: Record<string, GridAction> = {
  a: { kind: 'label', value: 'accept' },
  r: { kind: 'label', value: 'reject' },
  u: { kind: 'label', value: 'unsure' },
  '0': { kind: 'label', value: null },
  Backspace: { kind: 'label', value: null },
  ArrowLeft: { kind: 'move', to: 'left' },
  ArrowRight: { kind: 'move', to: 'right' },
  ArrowUp: { kind: 'move', to: 'up' },
  ArrowDown: { kind: 'move', to: 'down' },
  Home: { kind: 'move', to: 'first' },
  End: { kind: 'move', to: 'last' },
  ' ': { kind: 'detail' },
  Enter: { kind: 'detail' },
  Escape: { kind: 'close' },
  z: { kind: 'undo' },
  n: { kind: 'next-page' },
  o: { kind: 'reorder' },
  '?': { kind: 'help' },
};

/** The key list shown by the help panel: (keys, what they do). */
export const KEY_HELP: readonly (readonly [string, string])[] = [
  ['a / r / u', 'accept / reject / unsure'],
  ['0 or Backspace', 'clear the label'],
  ['arrow keys, Home, End', 'move between cutouts'],
  ['space or Enter', 'details of the object'],
  ['Esc', 'close the details'],
  ['z', 'undo your last label change'],
  ['n', 'next page'],
  ['o', 'reorder by the newest probe'],
  ['?', 'show or hide this list'],
];

/** The grid action of a key press, or null when the key is not the grid's. */
export function actionForKey(press: KeyPress): GridAction | null {
  if (press.ctrlKey || press.altKey || press.metaKey) return null;
  // letters work with Caps Lock or Shift too
  const key = press.key.length === 1 ? press.key.toLowerCase() : press.key;
  return KEYS[key] ?? null;
}

/** Whether a key event comes from somewhere the user types (the map must not steal it). */
export function isTypingTarget(target: EventTarget | null): boolean {
  if (!target || typeof (target as Element).tagName !== 'string') return false;
  const element = target as HTMLElement;
  const tag = element.tagName;
  if (tag === 'TEXTAREA' || tag === 'SELECT' || element.isContentEditable) return true;
  if (tag !== 'INPUT') return false;
  const type = (element as HTMLInputElement).type;
  return !['button', 'checkbox', 'radio', 'range', 'submit', 'reset'].includes(type);
}

/**
 * The tile index after a move in a grid of `count` tiles laid out in `columns` columns.
 * Left/right wrap across rows; up/down stay in the column and stop at the edges.
 */
export function moveIndex(index: number, to: Move, columns: number, count: number): number {
  if (count <= 0) return 0;
  const cols = Math.max(1, Math.floor(columns));
  const clamp = (i: number) => Math.min(count - 1, Math.max(0, i));
  switch (to) {
    case 'left': return clamp(index - 1);
    case 'right': return clamp(index + 1);
    case 'up': return index - cols >= 0 ? index - cols : index;
    case 'down': return index + cols < count ? index + cols : index;
    case 'first': return 0;
    case 'last': return count - 1;
  }
}
