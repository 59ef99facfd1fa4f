import {
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
} from 'chart.js';
import { h } from './dom';

Chart.register(LineController, LineElement, PointElement, LinearScale, CategoryScale, Legend, Tooltip);

export interface Series {
  label: string;
  values: (number | null)[];
  /** Second y axis (right), e.g. power next to SOC. */
  right?: boolean;
}

const COLOURS = ['#1f6feb', '#d9480f', '#2f9e44', '#9c36b5', '#e8590c', '#0c8599'];

/**
 * A line chart in a figure with a caption; the canvas has a text alternative (its caption and the latest values)
 * for screen readers. Returns the chart so a refreshing view can update it.
 */
export function lineChart(
  container: HTMLElement,
  caption: string,
  labels: string[],
  series: Series[],
): Chart {
  const canvas = h('canvas', {
    role: 'img',
    'aria-label': `${caption}: ${series.map((s) => `${s.label} ${s.values.at(-1) ?? '—'}`).join(', ')}`,
  });
  container.replaceChildren(
    h('figure', { class: 'chart' }, h('div', { class: 'chart-box' }, canvas), h('figcaption', {}, caption)),
  );
  return new Chart(canvas, {
    type: 'line',
    data: {
      labels,
      datasets: series.map((s, i) => ({
        label: s.label,
        data: s.values,
        borderColor: COLOURS[i % COLOURS.length],
        backgroundColor: COLOURS[i % COLOURS.length],
        yAxisID: s.right ? 'y1' : 'y',
        pointRadius: 0,
        spanGaps: true,
      })),
    },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      scales: {
        y: { beginAtZero: true },
        ...(series.some((s) => s.right)
          ? { y1: { beginAtZero: true, position: 'right' as const, grid: { drawOnChartArea: false } } }
          : {}),
      },
    },
  });
}
