{{/* Namespace of every object. */}}
{{- define "pv.namespace" -}}
{{- default .Release.Namespace .Values.namespace.name -}}
{{- end -}}

{{/* The application image: repository:tag, or repository@digest when a digest is given. */}}
{{- define "pv.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The four components: values key, object name, component label, command, port, container, database secret key. */}}
{{- define "pv.components" -}}
estoque: {name: estoque-service, component: inventory, command: inventory, port: 5003, container: inventory, dbKey: ESTOQUE_DATABASE_URL, configKeys: []}
pagamentos: {name: pagamentos-service, component: payments, command: payments, port: 5002, container: payments, dbKey: PAGAMENTOS_DATABASE_URL, configKeys: [PAYMENT_DECLINE_RATE, PAYMENT_LATENCY_MS]}
pedidos: {name: pedidos-service, component: orders, command: orders, port: 5001, container: orders, dbKey: PEDIDOS_DATABASE_URL, configKeys: [ESTOQUE_SERVICE_URL, PAGAMENTOS_SERVICE_URL, SAGA_CALL_TIMEOUT_MS]}
gateway: {name: api-gateway, component: gateway, command: gateway, port: 5000, container: gateway, dbKey: "", configKeys: [ESTOQUE_SERVICE_URL, PAGAMENTOS_SERVICE_URL, PEDIDOS_SERVICE_URL, UPSTREAM_TIMEOUT_MS]}
{{- end -}}

{{/* Egress to the database from a service with one: the in-cluster StatefulSet or the external CIDRs. */}}
{{- define "pv.databaseEgress" -}}
{{- if .Values.postgresql.enabled }}
- to:
    - podSelector:
        matchLabels:
          app.kubernetes.io/name: postgres
  ports:
    - protocol: TCP
      port: 5432
{{- else }}
- {{- with .Values.externalDatabase.cidrs }}
  to:
    {{- range . }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  {{- end }}
  ports:
    - protocol: TCP
      port: {{ .Values.externalDatabase.port }}
{{- end }}
{{- end -}}

{{/* Egress to the trace collector, when tracing is on. */}}
{{- define "pv.tracingEgress" -}}
{{- if .Values.tracing.otlpEndpoint }}
- to:
    {{- toYaml .Values.tracing.networkPolicyPeers | nindent 4 }}
  ports:
    - protocol: TCP
      port: {{ .Values.tracing.port }}
{{- end }}
{{- end -}}

{{/* A database URL of the Secret. */}}
{{- define "pv.databaseUrl" -}}
{{- $root := index . 0 -}}
{{- $db := index . 1 -}}
{{- $s := $root.Values.secrets -}}
{{- if $root.Values.postgresql.enabled -}}
{{- printf "postgres://%s:%s@postgres:5432/%s" (urlquery $s.postgresUser) (urlquery $s.postgresPassword) $db -}}
{{- else -}}
{{- $e := $root.Values.externalDatabase -}}
{{- if not $e.host -}}
{{- fail "postgresql.enabled=false needs externalDatabase.host (or secrets.create=false with your own Secret)" -}}
{{- end -}}
{{- printf "postgres://%s:%s@%s:%v/%s" (urlquery $s.postgresUser) (urlquery $s.postgresPassword) $e.host $e.port $db -}}
{{- with $e.sslmode }}{{ printf "?sslmode=%s" . }}{{ end -}}
{{- end -}}
{{- end -}}
