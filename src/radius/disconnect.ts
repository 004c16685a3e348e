/** Why a session is disconnected; recorded in disconnect_requests.reason. */
export type DisconnectReason = 'arrears' | 'ended' | 'disabled' | 'staff';

/** The result of one RFC 5176 Disconnect-Request exchange, as recorded in disconnect_requests. */
export interface DisconnectOutcome {
  readonly sessionId: number;
  readonly nasIp: string;
  readonly outcome: 'ack' | 'nak' | 'timeout' | 'error';
  /** Error-Cause of a Disconnect-NAK (RFC 5176 §3.5), else null. */
  readonly errorCause: number | null;
  readonly attempts: number;
}

/**
 * Sends RFC 5176 Disconnect-Requests to the NAS holding a session and records each outcome.
 * Injected into the settlement worker and the API by main.ts.
 */
export interface Disconnector {
  /** Disconnects one online session (acct_sessions.id); a session already stopped is reported as `error`. */
  disconnectSession(sessionId: number, reason: DisconnectReason, requestedBy: string | null): Promise<DisconnectOutcome>;
  /** Disconnects every online session of an account, of one area when given. */
  disconnectAccount(
    accountId: number,
    reason: DisconnectReason,
    requestedBy: string | null,
    area?: 'dorm' | 'office',
  ): Promise<DisconnectOutcome[]>;
}
