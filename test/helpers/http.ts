// node:http clients for tests that must send what fetch() refuses: headers such as Host,
// Connection or TE (httpRequest), or a path sent exactly as written, with no client-side
// normalisation of "..", "%2e" or "\\" (rawRequest, for normalisation tests).

import { request, type IncomingMessage, type RequestOptions } from 'node:http';

export interface SimpleResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface SimpleRequest {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
}

function send(target: string | RequestOptions, options: SimpleRequest): Promise<SimpleResponse> {
  const settings: RequestOptions = { method: options.method ?? 'GET', headers: options.headers, agent: false };
  return new Promise((resolve, reject) => {
    const onResponse = (res: IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    };
    const req = typeof target === 'string' ? request(target, settings, onResponse) : request({ ...target, ...settings }, onResponse);
    req.on('error', reject);
    req.end(options.body);
  });
}

export function httpRequest(url: string, options: SimpleRequest = {}): Promise<SimpleResponse> {
  return send(url, options);
}

export function rawRequest(base: string, path: string, options: SimpleRequest = {}): Promise<SimpleResponse> {
  const url = new URL(base);
  return send({ host: url.hostname, port: url.port, path }, options);
}
