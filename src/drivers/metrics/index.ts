/**
 * createMetricsSource(config, driver): the metrics source the configuration's `metrics` section
 * asks for — libvirt polling through `driver` (the default), or Prometheus. The caller owns it
 * and close()s it (the polling source never closes the driver).
 */
import type { TideConfig } from '../../config/schema.js';
import type { HypervisorDriver } from '../hypervisor.js';
import { defaultMapping, PrometheusSource, type PrometheusHostMapping } from './prometheus.js';
import { DriverPollingSource, type MetricsSource } from './source.js';

export function createMetricsSource(config: Pick<TideConfig, 'hosts' | 'metrics'>, driver: Pick<HypervisorDriver, 'sample' | 'kind'>): MetricsSource {
  const m = config.metrics;
  if (!m || m.source === 'libvirt' || !m.prometheus) return new DriverPollingSource(driver);
  const p = m.prometheus;
  const hosts: Record<string, PrometheusHostMapping> = {};
  for (const h of config.hosts) {
    const mapping = p.hosts[h.name] ?? defaultMapping(h.uri);
    if (mapping) hosts[h.name] = mapping;
  }
  return new PrometheusSource({
    url: p.url, hosts, staleSec: p.staleSec, rateWindowSec: p.rateWindowSec, timeoutSec: p.timeoutSec,
    instanceLabel: p.instanceLabel, domainLabel: p.domainLabel,
  });
}

export { DriverPollingSource, gapFreezeReasons, missingAgainst, type MetricsInventory, type MetricsReading, type MetricsSource, type SeriesGap } from './source.js';
export { PrometheusSource, defaultMapping, type PrometheusHostMapping, type PrometheusSourceOptions } from './prometheus.js';
