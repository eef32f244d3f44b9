/**
 * History charts (uPlot): hosts on, energy with Tide vs always-on, migrations. Markers (where a
 * demo's observed days end and acting begins) are drawn as DOM elements over each plot, so they
 * can be read and tested like the rest of the page.
 */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { HistoryPoint } from './api';

const INK = '#0f172a';
const TEAL = '#0f766e';
const SLATE = '#94a3b8';
const AMBER = '#d97706';
const HOST_COLOURS = ['#0f766e', '#2563eb', '#d97706', '#9333ea', '#db2777', '#65a30d'];

/** A vertical line at `tMs` with a label; `before` labels the shaded span from the plot's start to it. */
export interface ChartMarker {
  tMs: number;
  label: string;
  before?: string;
  testid: string;
}

/** Places the markers over the plotting area (u.over; x in CSS px from its left); those outside the x range are left out. */
function placeMarkers(u: uPlot, markers: readonly ChartMarker[]): void {
  let layer = u.over.querySelector<HTMLDivElement>(':scope > .chart-markers');
  if (!layer) {
    layer = document.createElement('div');
    layer.className = 'chart-markers';
    u.over.appendChild(layer);
  }
  const width = u.over.clientWidth;
  const div = (cls: string, text?: string): HTMLDivElement => {
    const d = document.createElement('div');
    d.className = cls;
    if (text !== undefined) d.textContent = text;
    return d;
  };
  layer.replaceChildren(...markers.flatMap((m) => {
    const x = u.valToPos(m.tMs / 1000, 'x');
    if (!Number.isFinite(x) || x < 0 || x > width) return [];
    const line = div('chart-marker');
    line.style.left = `${x}px`;
    line.dataset.testid = m.testid;
    line.dataset.x = String(Math.round(x));
    line.dataset.width = String(Math.round(width));
    line.appendChild(div('chart-marker-label', m.label));
    if (m.before === undefined) return [line];
    const shade = div('chart-shade');
    shade.style.width = `${x}px`;
    shade.appendChild(div('chart-shade-label', m.before));
    return [shade, line];
  }));
}

function Chart({ title, data, series, testid, integer = false, markers = [] }: { title: string; data: uPlot.AlignedData; series: uPlot.Series[]; testid: string; integer?: boolean; markers?: readonly ChartMarker[] }) {
  const el = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  // read by the draw hook, which runs on every redraw (new data, resize)
  const marks = useRef(markers);
  marks.current = markers;
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
      hooks: { draw: [(u) => placeMarkers(u, marks.current)] },
    }, data, el.current);
    return () => { plot.current?.destroy(); plot.current = null; };
  }, [series.length]);
  useEffect(() => { plot.current?.setData(data); }, [data]);
  useEffect(() => { if (plot.current) placeMarkers(plot.current, markers); }, [markers]);
  return <div class="card chart" data-testid={testid}><h3>{title}</h3><div ref={el} /></div>;
}

export function HistoryCharts({ points, markers = [] }: { points: HistoryPoint[]; markers?: readonly ChartMarker[] }) {
  if (points.length < 2) return <div class="card empty">History appears after the first rounds.</div>;
  const t = points.map((p) => p.tMs / 1000);
  const hosts = Object.keys(points[points.length - 1]!.hostCpuPct).sort();
  const has = (f: (p: HistoryPoint) => number | null): boolean => points.some((p) => f(p) !== null);
  return (
    <div class="charts">
      {has((p) => p.hostsOn) && <Chart testid="chart-hosts" markers={markers} integer title="Hosts powered on" data={[t, points.map((p) => p.hostsOn)]}
        series={[{ label: 'hosts on', stroke: TEAL, width: 2, fill: 'rgba(15,118,110,0.12)', paths: uPlot.paths.stepped?.({ align: 1 }) }]} />}
      {has((p) => p.energyKWh) && <Chart testid="chart-energy" markers={markers} title="Energy, kWh (Tide vs always-on)" data={[t, points.map((p) => p.energyKWh), points.map((p) => p.alwaysOnKWh)]}
        series={[{ label: 'with Tide', stroke: TEAL, width: 2 }, { label: 'always on', stroke: SLATE, width: 2, dash: [6, 4] }]} />}
      <Chart testid="chart-host-cpu" markers={markers} title="CPU per host, %" data={[t, ...hosts.map((h) => points.map((p) => p.hostCpuPct[h] ?? null))]}
        series={hosts.map((h, i) => ({ label: h, stroke: HOST_COLOURS[i % HOST_COLOURS.length], width: 1.5 }))} />
      {has((p) => p.migrations) && <Chart testid="chart-migrations" markers={markers} integer title="Migrations (cumulative)" data={[t, points.map((p) => p.migrations)]}
        series={[{ label: 'migrations', stroke: AMBER, width: 2, paths: uPlot.paths.stepped?.({ align: 1 }) }]} />}
    </div>
  );
}
