/**
 * What the app tells the user in passing ("saved", "undone", "could not save"): read aloud by
 * screen readers through the ARIA live regions in App.svelte, and shown on screen.
 *
 * Errors stay until the next message; information fades after a few seconds. Repeating the
 * same message re-announces it (screen readers skip a live region whose text did not change).
 */

export type StatusKind = 'info' | 'error';

export const INFO_VISIBLE_MS = 4000;

class StatusLine {
  message = $state('');
  kind: StatusKind = $state('info');
  /** Bumped per message, so that equal messages still count as new. */
  serial = $state(0);
  private timer: ReturnType<typeof setTimeout> | null = null;

  say(message: string, kind: StatusKind = 'info'): void {
    if (this.timer) clearTimeout(this.timer);
    this.message = message;
    this.kind = kind;
    this.serial += 1;
    if (kind === 'info') {
      const serial = this.serial;
      this.timer = setTimeout(() => {
        if (this.serial === serial) this.message = '';
      }, INFO_VISIBLE_MS);
    }
  }

  clear(): void {
    this.message = '';
  }
}

export const status = new StatusLine();
