import 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    /** http://127.0.0.1:PORT of the s3rver started by test/setup/global.ts. */
    s3Endpoint: string;
    /** postgres://takeout@127.0.0.1:PORT/postgres of the throwaway cluster (trust authentication). */
    pgUrl: string;
    /** http://127.0.0.1:PORT/devstoreaccount1 of the Azurite started by test/setup/global.ts. */
    azureBlobEndpoint: string;
    /** A connection string for Azurite's well-known development account (devstoreaccount1). */
    azureConnectionString: string;
  }
}
