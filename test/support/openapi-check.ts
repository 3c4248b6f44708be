import assert from 'node:assert/strict';
import Ajv2020 from 'ajv/dist/2020';

export type OpenApiDoc = { paths: Record<string, Record<string, { responses: Record<string, { content: Record<string, { schema: object }> }> }>> };

/** Fetches the served OpenAPI document; `check` validates a live body against its schema for (path, method, status, content type). */
export async function openApiChecker(gatewayUrl: string) {
  const doc = (await (await fetch(`${gatewayUrl}/openapi.json`)).json()) as OpenApiDoc;
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  const check = (path: string, method: string, status: number, body: unknown, contentType = 'application/json'): void => {
    const schema = doc.paths[path]?.[method]?.responses[String(status)]?.content[contentType]?.schema;
    assert.ok(schema, `the document describes ${method.toUpperCase()} ${path} ${status} ${contentType}`);
    const validate = ajv.compile(schema);
    assert.ok(validate(body), `${method.toUpperCase()} ${path} ${status}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(body).slice(0, 500)}`);
  };
  return { doc, check };
}

/** A JSON call to the gateway with a key (read when called, so it may be set in `before`): status and parsed body. */
export function jsonCaller(gatewayUrl: () => string, key: () => string) {
  return async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const response = await fetch(`${gatewayUrl()}${path}`, {
      method,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key()}`, ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as unknown };
  };
}
