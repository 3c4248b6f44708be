export { TokenwireClient, TokenwireError, type TokenwireClientOptions } from './tokenwire-client';
export { GenerationStream } from './generation-stream';
