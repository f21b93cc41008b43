/**
 * Points the Keboola source's file downloads at an S3-compatible store instead of the project's own S3 (the
 * tests' s3rver); read outside the option specs, so the CLI lists it among the known TAKEOUT_* variables.
 */
export const KEBOOLA_S3_ENDPOINT_ENV = 'TAKEOUT_KEBOOLA_S3_ENDPOINT';
