/** Every replica the fleet could try failed before the first token; `cause` is the last failure (the model's fallbacks come next). */
export class FleetExhaustedError extends Error {
  constructor(
    readonly model: string,
    readonly lastError: unknown,
  ) {
    super(`every deployment of "${model}" failed before the first token`, { cause: lastError });
    this.name = 'FleetExhaustedError';
  }
}
