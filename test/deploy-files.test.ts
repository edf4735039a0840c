// The deployment files parse, say what docs/operations.md promises (three replicas on one Redis,
// Prometheus scraping each, Grafana with the dashboard, probes on the admin port, a grace period
// longer than the drain), and the gateway configs inside them pass `spillway check`.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { ROOT, runCli, writeTempConfig } from './helpers/gateway.js';

const DEPLOY = join(ROOT, 'deploy');
// biome-ignore lint/suspicious/noExplicitAny: parsed YAML of known files, read field by field with expectations.
type Doc = Record<string, any>;

function kubernetesDocs(): Doc[] {
  return readdirSync(join(DEPLOY, 'kubernetes'))
    .filter((file) => file.endsWith('.yaml'))
    .flatMap((file) =>
      parseAllDocuments(readFileSync(join(DEPLOY, 'kubernetes', file), 'utf8')).map((doc) => {
        expect(doc.errors, file).toEqual([]);
        return doc.toJS() as Doc;
      }),
    );
}

/** "30s", "500ms", "2m" → ms (the config's units, enough for these files). */
const ms = (text: string) => {
  const m = /^(\d+)(ms|s|m)$/.exec(text)!;
  return Number(m[1]) * { ms: 1, s: 1_000, m: 60_000 }[m[2] as 'ms' | 's' | 'm'];
};

describe('deploy/docker-compose.yml', () => {
  const compose = parse(readFileSync(join(DEPLOY, 'docker-compose.yml'), 'utf8'), { merge: true }) as Doc;

  it('is the one compose file: three replicas on one Redis, backends, Prometheus, Grafana', () => {
    expect(existsSync(join(DEPLOY, 'docker-compose.yaml'))).toBe(false);
    const replicas = Object.keys(compose.services).filter((name) => name.startsWith('spillway-'));
    expect(replicas).toHaveLength(3);
    for (const name of replicas) {
      const service = compose.services[name];
      expect(service.build).toBe('..');
      expect(service.environment.REDIS_URL).toBe('redis://redis:6379');
      expect(service.environment.SPILLWAY_ADMIN_TOKEN).toBeDefined();
      expect(service.volumes).toContain('./gateway.yaml:/etc/spillway/gateway.yaml:ro');
    }
    expect(compose.services.redis.image).toMatch(/^redis:/);
    // The simulated backends: demo/ mounted into a plain Node 24 image (dist/ has no demo).
    expect(compose.services.backends.volumes).toContain('../demo:/demo:ro');
    expect(existsSync(join(ROOT, 'demo', compose.services.backends.command.at(-1)))).toBe(true);
    const grafanaVolumes: string[] = compose.services.grafana.volumes;
    expect(grafanaVolumes.some((v) => v.startsWith('./grafana-dashboard.json:'))).toBe(true);
    for (const volume of [...grafanaVolumes, ...compose.services.prometheus.volumes])
      expect(existsSync(join(DEPLOY, volume.split(':')[0]!)), volume).toBe(true);
  });

  it('Prometheus scrapes every replica on its admin port', () => {
    const prometheus = parse(readFileSync(join(DEPLOY, 'prometheus', 'prometheus.yml'), 'utf8')) as Doc;
    const targets: string[] = prometheus.scrape_configs[0].static_configs[0].targets;
    expect(targets.sort()).toEqual(['spillway-1:9901', 'spillway-2:9901', 'spillway-3:9901']);
  });

  it('its gateway config passes spillway check, and the stop grace period is longer than the drain', async () => {
    const checked = await runCli(['check', '--config', join(DEPLOY, 'gateway.yaml')]);
    expect(checked.stderr.replace(/warning: .*admin.*\n?/g, '')).toBe('');
    expect(checked.code).toBe(0);
    const config = parse(readFileSync(join(DEPLOY, 'gateway.yaml'), 'utf8')) as Doc;
    expect(ms(compose.services['spillway-1'].stop_grace_period)).toBeGreaterThan(ms(config.shutdown.drain));
  });
});

describe('deploy/kubernetes', () => {
  const docs = kubernetesDocs();
  const kind = (k: string) => docs.filter((doc) => doc.kind === k);

  it('has a ConfigMap, Deployment, Service, PodDisruptionBudget and HorizontalPodAutoscaler', () => {
    for (const k of ['ConfigMap', 'Deployment', 'Service', 'PodDisruptionBudget', 'HorizontalPodAutoscaler'])
      expect(kind(k).length, k).toBeGreaterThan(0);
  });

  it('probes readiness and liveness on the admin port; grace outlasts preStop plus shutdown.drain', () => {
    const deployment = kind('Deployment').find((d) => d.metadata.name === 'spillway')!;
    const pod = deployment.spec.template.spec;
    const container = pod.containers[0];
    const adminPort = container.ports.find((p: Doc) => p.name === 'admin');
    expect(adminPort.containerPort).toBe(9901);
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'admin' });
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'admin' });
    const config = parse(kind('ConfigMap')[0]!.data['gateway.yaml']) as Doc;
    expect(config.admin.port).toBe(9901);
    const preStop = Number(container.lifecycle.preStop.exec.command[1]) * 1_000;
    expect(pod.terminationGracePeriodSeconds * 1_000).toBeGreaterThan(preStop + ms(config.shutdown.drain));
    const hpa = kind('HorizontalPodAutoscaler')[0]!;
    expect(hpa.spec.scaleTargetRef.name).toBe('spillway');
    expect(kind('PodDisruptionBudget')[0]!.spec.selector.matchLabels).toEqual(deployment.spec.selector.matchLabels);
  });

  it('the ConfigMap gateway.yaml passes spillway check', async () => {
    const file = await writeTempConfig(kind('ConfigMap')[0]!.data['gateway.yaml']);
    const checked = await runCli(['check', '--config', file]);
    expect(checked.stdout).toContain(': ok (1 upstreams, 1 routes)');
    expect(checked.code).toBe(0);
  });
});
