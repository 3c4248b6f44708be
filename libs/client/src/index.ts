export { TokenwireClient, TokenwireError, type ConnectionState, type TokenwireClientOptions } from './tokenwire-client';
export { GenerationStream } from './generation-stream';
