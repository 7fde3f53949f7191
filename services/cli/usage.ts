/** Bad arguments: the CLI prints the message and its usage, and exits 2. */
export class UsageError extends Error {}
