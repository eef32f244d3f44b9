/** Stable codes of data-set errors; the CLI prints them and exits 1. */
export type DataErrorCode =
  /** The checksum manifest is unreadable or malformed (names the file and line). */
  | 'TIDE_DATA_MANIFEST'
  /** A download failed: HTTP status, network error, timeout or a body over the size limit
   *  (names the file and the URL). */
  | 'TIDE_DATA_FETCH'
  /** A downloaded file's SHA-256 differs from the manifest (names the file, the URL, both sums). */
  | 'TIDE_DATA_CHECKSUM'
  /** Days asked for that the manifest does not list. */
  | 'TIDE_DATA_UNKNOWN'
  /** The cache directory cannot be created, read or written (names it and the system error). */
  | 'TIDE_DATA_IO'
  /** No copy of the traces was found where Tide looks for them. */
  | 'TIDE_DATA_MISSING';

export class DataError extends Error {
  constructor(
    readonly code: DataErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'DataError';
  }
}
