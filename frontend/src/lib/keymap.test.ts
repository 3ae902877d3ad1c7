import { describe, expect, it } from 'vitest';
import { actionForKey, isTypingTarget, KEY_HELP, moveIndex } from './keymap';

describe('actionForKey', () => {
  it('maps the labeling keys', () => {
    expect(actionForKey({ key: 'a' })).toEqual({ kind: 'label', value: 'accept' });
    expect(actionForKey({ key: 'r' })).toEqual({ kind: 'label', value: 'reject' });
    expect(actionForKey({ key: 'u' })).toEqual({ kind: 'label', value: 'unsure' });
    expect(actionForKey({ key: '0' })).toEqual({ kind: 'label', value: null });
    expect(actionForKey({ key: 'z' })).toEqual({ kind: 'undo' });
    expect(actionForKey({ key: 'n' })).toEqual({ kind: 'next-page' });
    expect(actionForKey({ key: 'o' })).toEqual({ kind: 'reorder' });
    expect(actionForKey({ key: ' ' })).toEqual({ kind: 'detail' });
    expect(actionForKey({ key: 'Escape' })).toEqual({ kind: 'close' });
    expect(actionForKey({ key: 'ArrowDown' })).toEqual({ kind: 'move', to: 'down' });
  });

  it('accepts letters typed with Shift or Caps Lock', () => {
    expect(actionForKey({ key: 'A' })).toEqual({ kind: 'label', value: 'accept' });
    expect(actionForKey({ key: 'Z' })).toEqual({ kind: 'undo' });
  });

  it('leaves browser shortcuts and other keys alone', () => {
    expect(actionForKey({ key: 'r', ctrlKey: true })).toBeNull(); // reload
    expect(actionForKey({ key: 'z', metaKey: true })).toBeNull();
    expect(actionForKey({ key: 'a', altKey: true })).toBeNull();
    expect(actionForKey({ key: 'q' })).toBeNull();
    expect(actionForKey({ key: 'Tab' })).toBeNull();
  });

  it('documents every key it maps in the help list', () => {
    const help = KEY_HELP.map(([keys]) => keys).join(' ');
    for (const key of ['a', 'r', 'u', '0', 'z', 'n', '?', 'Esc', 'space', 'Home', 'End']) {
      expect(help).toContain(key);
    }
  });
});

describe('isTypingTarget', () => {
  const element = (tagName: string, extra: Record<string, unknown> = {}) =>
    ({ tagName, isContentEditable: false, ...extra }) as unknown as EventTarget;

  it('is true in text fields, false on buttons, sliders and tiles', () => {
    expect(isTypingTarget(element('INPUT', { type: 'text' }))).toBe(true);
    expect(isTypingTarget(element('INPUT', { type: 'password' }))).toBe(true);
    expect(isTypingTarget(element('TEXTAREA'))).toBe(true);
    expect(isTypingTarget(element('SELECT'))).toBe(true);
    expect(isTypingTarget(element('DIV', { isContentEditable: true }))).toBe(true);
    expect(isTypingTarget(element('INPUT', { type: 'range' }))).toBe(false);
    expect(isTypingTarget(element('BUTTON'))).toBe(false);
    expect(isTypingTarget(element('DIV'))).toBe(false);
    expect(isTypingTarget(null)).toBe(false);
  });
});

describe('moveIndex', () => {
  // 10 tiles in 4 columns:  0 1 2 3 / 4 5 6 7 / 8 9
  it('moves left and right across rows, stopping at the ends', () => {
    expect(moveIndex(3, 'right', 4, 10)).toBe(4);
    expect(moveIndex(4, 'left', 4, 10)).toBe(3);
    expect(moveIndex(0, 'left', 4, 10)).toBe(0);
    expect(moveIndex(9, 'right', 4, 10)).toBe(9);
  });

  it('moves up and down within a column, staying put at the edges', () => {
    expect(moveIndex(1, 'down', 4, 10)).toBe(5);
    expect(moveIndex(5, 'down', 4, 10)).toBe(9);
    expect(moveIndex(6, 'down', 4, 10)).toBe(6); // no tile below in the last row
    expect(moveIndex(9, 'up', 4, 10)).toBe(5);
    expect(moveIndex(2, 'up', 4, 10)).toBe(2);
  });

  it('jumps to the first and last tile', () => {
    expect(moveIndex(5, 'first', 4, 10)).toBe(0);
    expect(moveIndex(5, 'last', 4, 10)).toBe(9);
  });

  it('copes with an empty page and a degenerate column count', () => {
    expect(moveIndex(0, 'right', 4, 0)).toBe(0);
    expect(moveIndex(2, 'down', 0, 5)).toBe(3);
  });
});
