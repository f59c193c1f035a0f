// Types the dashboards of monitoring/grafana/dashboards must satisfy.
//
// Built on @grafana/schema (pinned to the same version as the Grafana image):
// the classic Dashboard/Panel model plus the per-plugin option types of the
// panels we use (timeseries, stat, logs, nodeGraph); the Prometheus, Loki and Tempo query models are
// spelled out below (@grafana/schema 13 no longer ships them).
//
// JSON stores enum members as plain strings ("absolute", "table", ...), which
// TypeScript would not accept for string enums (ThresholdsMode, ...). Lit<T>
// widens each string enum to its string values and nothing else, so a typo in
// an enum value, a wrong type ("gridPos": "x") or an unknown property still fails.
import type { Dashboard, FieldConfig, FieldConfigSource, Panel, RowPanel } from '@grafana/schema';
import type {
  FieldConfig as TimeSeriesFieldConfig,
  Options as TimeSeriesOptions,
} from '@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen';
import type { Options as StatOptions } from '@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen';
import type { Options as LogsOptions } from '@grafana/schema/dist/esm/raw/composable/logs/panelcfg/x/LogsPanelCfg_types.gen';
import type { Options as NodeGraphOptions } from '@grafana/schema/dist/esm/raw/composable/nodegraph/panelcfg/x/NodeGraphPanelCfg_types.gen';

export type Lit<T> = T extends string
  ? T | `${T}`
  : T extends number | boolean | null | undefined
    ? T
    : T extends ReadonlyArray<infer U>
      ? Array<Lit<U>>
      : T extends object
        ? { [K in keyof T]: Lit<T[K]> }
        : T;

// Data source references must use the uids provisioned in
// monitoring/grafana/provisioning/datasources/datasources.yml.
type PromRef = { type: 'prometheus'; uid: 'prometheus' };
type LokiRef = { type: 'loki'; uid: 'loki' };
type TempoRef = { type: 'tempo'; uid: 'tempo' };

// Grafana's Tempo query model (TempoDataQuery of @grafana/schema 12.4, the last release
// that shipped it): the fields a service-map query uses.
type TempoTarget = {
  refId: string;
  datasource: TempoRef;
  queryType: 'traceql' | 'traceqlSearch' | 'serviceMap' | 'upload' | 'nativeSearch' | 'traceId' | 'clear';
  serviceMapQuery?: string | string[];
  serviceMapIncludeNamespace?: boolean;
  limit?: number;
  hide?: boolean;
};

// Grafana's Prometheus query model (public/app/plugins/datasource/prometheus dataquery);
// @grafana/schema no longer ships it, so the fields we use are spelled out here.
type PromTarget = {
  refId: string;
  datasource: PromRef;
  expr: string;
  legendFormat?: string;
  editorMode?: 'code' | 'builder';
  range?: boolean;
  instant?: boolean;
  format?: 'time_series' | 'table' | 'heatmap';
  interval?: string;
  exemplar?: boolean;
  hide?: boolean;
};
// Grafana's Loki query model (LokiDataQuery of @grafana/schema 12.4, the last release that
// shipped it), with the fields of DataQuery that Grafana stores.
type LokiTarget = {
  refId: string;
  datasource: LokiRef;
  expr: string;
  editorMode?: 'builder' | 'code';
  queryType?: 'instant' | 'range' | 'stream';
  legendFormat?: string;
  maxLines?: number;
  step?: string;
  direction?: 'backward' | 'forward' | 'scan';
  hide?: boolean;
  instant?: boolean;
  range?: boolean;
  resolution?: number;
};

type FieldDefaults<Custom> = Omit<Lit<FieldConfig>, 'custom'> & { custom?: Lit<Custom> };
type TypedFieldConfig<Custom> = {
  defaults: FieldDefaults<Custom>;
  overrides: Lit<FieldConfigSource>['overrides'];
};

type PanelBase = Omit<Lit<Panel>, 'type' | 'options' | 'fieldConfig' | 'targets' | 'datasource'> & {
  id: number;
  title: string;
  gridPos: Lit<NonNullable<Panel['gridPos']>>;
};

export type TimeSeriesPanel = PanelBase & {
  type: 'timeseries';
  datasource: PromRef;
  options: Lit<TimeSeriesOptions>;
  fieldConfig: TypedFieldConfig<TimeSeriesFieldConfig>;
  targets: PromTarget[];
};

export type StatPanel = PanelBase & {
  type: 'stat';
  datasource: PromRef;
  options: Lit<StatOptions>;
  fieldConfig: TypedFieldConfig<Record<string, never>>;
  targets: PromTarget[];
};

export type LogsPanel = PanelBase & {
  type: 'logs';
  datasource: LokiRef;
  options: Lit<LogsOptions>;
  targets: LokiTarget[];
};

export type NodeGraphPanel = PanelBase & {
  type: 'nodeGraph';
  datasource: TempoRef;
  options: Lit<NodeGraphOptions>;
  targets: TempoTarget[];
};

export type ContentPanel = TimeSeriesPanel | StatPanel | LogsPanel | NodeGraphPanel;

export type Row = Omit<Lit<RowPanel>, 'panels'> & { id: number; panels: ContentPanel[] };

export type CheckedDashboard = Omit<Lit<Dashboard>, 'panels'> & {
  uid: string;
  title: string;
  panels: Array<ContentPanel | Row>;
};
