/** History charts (uPlot): hosts on, energy with Tide vs always-on, migrations. */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { HistoryPoint } from './api';

const INK = '#0f172a';
const TEAL = '#0f766e';
const SLATE = '#94a3b8';
const AMBER = '#d97706';
const HOST_COLOURS = ['#0f766e', '#2563eb', '#d97706', '#9333ea', '#db2777', '#65a30d'];

function Chart({ title, data, series, testid, integer = false }: { title: string; data: uPlot.AlignedData; series: uPlot.Series[]; testid: string; integer?: boolean }) {
  const el = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  useEffect(() => {
    if (!el.current) return;
    const width = Math.max(320, el.current.clientWidth);
    plot.current = new uPlot({
      width, height: 220, series: [{}, ...series],
      axes: [
        { stroke: INK, space: 110, grid: { stroke: '#e2e8f0' }, values: (_u, ticks) => ticks.map((t) => { const d = new Date(t * 1000); return `${['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][d.getUTCDay()]} ${String(d.getUTCHours()).padStart(2, '0')}:00`; }) },
        { stroke: INK, grid: { stroke: '#e2e8f0' }, ...(integer ? { incrs: [1, 2, 5, 10, 20, 50, 100] } : {}) },
      ],
      scales: { x: { time: true } },
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
    }, data, el.current);
    return () => { plot.current?.destroy(); plot.current = null; };
  }, [series.length]);
  useEffect(() => { plot.current?.setData(data); }, [data]);
  return <div class="card chart" data-testid={testid}><h3>{title}</h3><div ref={el} /></div>;
}

export function HistoryCharts({ points }: { points: HistoryPoint[] }) {
  if (points.length < 2) return <div class="card empty">History appears after the first rounds.</div>;
  const t = points.map((p) => p.tMs / 1000);
  const hosts = Object.keys(points[points.length - 1]!.hostCpuPct).sort();
  const has = (f: (p: HistoryPoint) => number | null): boolean => points.some((p) => f(p) !== null);
  return (
    <div class="charts">
      {has((p) => p.hostsOn) && <Chart testid="chart-hosts" integer title="Hosts powered on" data={[t, points.map((p) => p.hostsOn)]}
        series={[{ label: 'hosts on', stroke: TEAL, width: 2, fill: 'rgba(15,118,110,0.12)', paths: uPlot.paths.stepped?.({ align: 1 }) }]} />}
      {has((p) => p.energyKWh) && <Chart testid="chart-energy" title="Energy, kWh (Tide vs always-on)" data={[t, points.map((p) => p.energyKWh), points.map((p) => p.alwaysOnKWh)]}
        series={[{ label: 'with Tide', stroke: TEAL, width: 2 }, { label: 'always on', stroke: SLATE, width: 2, dash: [6, 4] }]} />}
      <Chart testid="chart-host-cpu" title="CPU per host, %" data={[t, ...hosts.map((h) => points.map((p) => p.hostCpuPct[h] ?? null))]}
        series={hosts.map((h, i) => ({ label: h, stroke: HOST_COLOURS[i % HOST_COLOURS.length], width: 1.5 }))} />
      {has((p) => p.migrations) && <Chart testid="chart-migrations" integer title="Migrations (cumulative)" data={[t, points.map((p) => p.migrations)]}
        series={[{ label: 'migrations', stroke: AMBER, width: 2, paths: uPlot.paths.stepped?.({ align: 1 }) }]} />}
    </div>
  );
}
