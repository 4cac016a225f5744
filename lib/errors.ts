/**
 * Error base and process exit codes shared by every layer. Each failure a technician can meet
 * is a subclass with a stable `code`, so the CLI maps it to an exit code and words without
 * parsing messages. Messages never contain key material.
 */

export const ExitCode = {
  OK: 0,
  /** Internal error / unexpected exception. */
  INTERNAL: 1,
  /** Bad command line or option value. */
  USAGE: 2,
  /** Device could not be opened or the transport failed (errno, timeout, host status). */
  DEVICE: 3,
  /** The device answered CHECK CONDITION (decoded sense printed). */
  SCSI_CHECK: 4,
  /** The protocol refused: license refused, signature mismatch, wrong disc, tampered data. */
  REFUSED: 5,
  /** Malformed input file or on-medium structure (image, ISO, directory). */
  FORMAT: 6,
  /** The license center could not be reached / answered a server error after retries. */
  CENTER_UNAVAILABLE: 7,
  /** The disc in the drive is not a mocopy disc: blank, another program's data, unreadable as a layout. */
  NOT_MOCOPY_DISC: 8,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export class MocopyError extends Error {
  /** Stable machine-readable code, e.g. 'E_SCSI_CHECK', 'E_LICENSE_REFUSED'. */
  readonly code: string;
  readonly exitCode: ExitCodeValue;
  /** A sentence telling the technician what to do next, when there is one. */
  readonly hint: string | undefined;
  constructor(code: string, message: string, opts: { exitCode?: ExitCodeValue; hint?: string; cause?: unknown } = {}) {
    super(message, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = new.target.name;
    this.code = code;
    this.exitCode = opts.exitCode ?? ExitCode.INTERNAL;
    this.hint = opts.hint;
  }
}

export class UsageError extends MocopyError {
  constructor(message: string, hint?: string) {
    super('E_USAGE', message, { exitCode: ExitCode.USAGE, ...(hint ? { hint } : {}) });
  }
}

/** Malformed bytes: an image header, an ISO volume, an on-disc directory, a license record. */
export class FormatError extends MocopyError {
  constructor(message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super('E_FORMAT', message, { exitCode: ExitCode.FORMAT, ...opts });
  }
}

/** The copy/open protocol refuses (signature mismatch, wrong medium, tampered chunk, license refused). */
export class RefusedError extends MocopyError {
  constructor(code: string, message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super(code, message, { exitCode: ExitCode.REFUSED, ...opts });
  }
}

/** `open`/`verify` on a disc that has no mocopy layout: blank, someone else's data, a CD in the MO slot. */
export class NotMocopyDiscError extends MocopyError {
  constructor(device: string, why: string) {
    super('E_NOT_MOCOPY_DISC', `${device}: not a mocopy disc (${why}): it holds no licensed copies`, {
      exitCode: ExitCode.NOT_MOCOPY_DISC,
      hint: 'put the MO disc the program was copied to in this drive',
    });
  }
}
