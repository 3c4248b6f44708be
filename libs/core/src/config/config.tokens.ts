/** Nest injection token of the validated TokenwireConfig. */
export const TOKENWIRE_CONFIG = Symbol('TOKENWIRE_CONFIG');
