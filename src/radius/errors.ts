/**
 * Why a datagram was refused by the packet layer, as a stable label for the `dropped{reason}` counter.
 * The server drops such packets silently (RFC 2865 §3, RFC 3579 §3.2); the reason is for ops, never for the peer.
 */
export type RadiusDecodeReason =
  | 'too_short'
  | 'oversize'
  | 'bad_length'
  | 'bad_attribute'
  | 'unknown_code'
  | 'unexpected_code'
  | 'identifier_mismatch'
  | 'bad_authenticator'
  | 'bad_message_authenticator'
  | 'missing_message_authenticator';

/**
 * A datagram that is not a well-formed, authentic RADIUS packet.
 * The message names the rule that failed and never carries attribute values, so it is safe to log.
 */
export class RadiusDecodeError extends Error {
  override readonly name = 'RadiusDecodeError';
  readonly reason: RadiusDecodeReason;

  constructor(reason: RadiusDecodeReason, detail?: string) {
    super(detail === undefined ? reason : `${reason}: ${detail}`);
    this.reason = reason;
  }
}

/**
 * A dictionary file that cannot be loaded, with the file and line at fault.
 * Raised only at startup, so a bad vendor file stops the server instead of mis-decoding packets.
 */
export class DictionaryError extends Error {
  override readonly name = 'DictionaryError';
  readonly file: string;
  readonly line: number;

  constructor(message: string, file: string, line: number) {
    super(`${file}:${line}: ${message}`);
    this.file = file;
    this.line = line;
  }
}
