/**
 * Who is signed in. The app asks the server once at start (GET /api/session, which also
 * hands back the CSRF token after a reload) and shows the sign-in screen while nobody is.
 * A 401 on any later request (the session expired or was ended elsewhere) signs out here.
 */

import { api, type ApiClient, type User } from '../api';

export class Auth {
  user: User | null = $state(null);
  /** True until the first answer about the session. */
  checking = $state(true);
  /** Why the session check failed (the server is unreachable, say); null when it did not. */
  error: string | null = $state(null);

  constructor(private readonly client: ApiClient) {
    client.onUnauthorized = () => {
      this.user = null;
    };
  }

  async restore(): Promise<void> {
    this.checking = true;
    this.error = null;
    try {
      this.user = (await this.client.whoAmI())?.user ?? null;
    } catch (error) {
      this.error = error instanceof Error ? error.message : String(error);
    } finally {
      this.checking = false;
    }
  }

  async signIn(username: string, password: string): Promise<void> {
    this.user = (await this.client.signIn(username, password)).user;
  }

  async signOut(): Promise<void> {
    try {
      await this.client.signOut();
    } finally {
      this.user = null;
    }
  }
}

export const auth = new Auth(api);
