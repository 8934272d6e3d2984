{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "strata.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified app name: release-chart, or the release name when it already holds the chart's. */}}
{{- define "strata.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "strata.routerName" -}}
{{- printf "%s-router" (include "strata.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "strata.cachenodeName" -}}
{{- printf "%s-cachenode" (include "strata.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "strata.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels of one component. Call with (dict "root" $ "component" "router"). */}}
{{- define "strata.selectorLabels" -}}
app.kubernetes.io/name: {{ include "strata.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* All labels of one component. Call with (dict "root" $ "component" "router"). */}}
{{- define "strata.labels" -}}
helm.sh/chart: {{ include "strata.chart" .root }}
{{ include "strata.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: strata
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "strata.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "strata.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "strata.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The router's in-cluster gRPC address, for the agents' --router. */}}
{{- define "strata.routerAddress" -}}
{{- printf "%s.%s.svc:%v" (include "strata.routerName" .) .Release.Namespace .Values.router.ports.grpc -}}
{{- end -}}

{{/*
Cross-field rules that values.schema.json cannot express readably; `helm install` stops with the
message. Included once from every manifest-producing template that depends on them.
*/}}
{{- define "strata.validate" -}}
{{- if and .Values.auth.enabled (not .Values.tls.enabled) -}}
{{- fail "auth.enabled needs tls.enabled: the binaries refuse bearer tokens over --plaintext" -}}
{{- end -}}
{{- if .Values.tls.enabled -}}
{{- $_ := required "tls.enabled needs tls.existingSecret (a Secret with the certificate, key and CA)" .Values.tls.existingSecret -}}
{{- end -}}
{{- if .Values.auth.enabled -}}
{{- $_ := required "auth.enabled needs auth.existingSecret (a Secret with the token file)" .Values.auth.existingSecret -}}
{{- end -}}
{{- if and .Values.cachenode.localSocket.enabled (eq (toString .Values.cachenode.tiers.dram.bytes) "0") -}}
{{- fail "cachenode.localSocket needs a DRAM tier (cachenode.tiers.dram.bytes > 0)" -}}
{{- end -}}
{{- end -}}

{{/* Server-side security flags shared by both binaries (TLS or --plaintext, tokens, health port). */}}
{{- define "strata.serverSecurityArgs" -}}
{{- if .root.Values.tls.enabled }}
- --tls-cert=/etc/strata/tls/{{ .root.Values.tls.certKey }}
- --tls-key=/etc/strata/tls/{{ .root.Values.tls.keyKey }}
{{- if .root.Values.tls.clientAuth }}
- --tls-client-ca=/etc/strata/tls/{{ .root.Values.tls.caKey }}
{{- end }}
{{- else }}
- --plaintext
{{- end }}
{{- if .root.Values.auth.enabled }}
- --auth-tokens-file=/etc/strata/auth/{{ .root.Values.auth.tokensKey }}
{{- end }}
- --health-listen=0.0.0.0:{{ .healthPort }}
{{- end -}}

{{/* Secret volumes (TLS, tokens) of both components. Call with the root context. */}}
{{- define "strata.secretVolumes" -}}
{{- if .Values.tls.enabled }}
- name: tls
  secret:
    secretName: {{ .Values.tls.existingSecret }}
    defaultMode: 0440
{{- end }}
{{- if .Values.auth.enabled }}
- name: auth
  secret:
    secretName: {{ .Values.auth.existingSecret }}
    defaultMode: 0440
{{- end }}
{{- end -}}

{{- define "strata.secretVolumeMounts" -}}
{{- if .Values.tls.enabled }}
- name: tls
  mountPath: /etc/strata/tls
  readOnly: true
{{- end }}
{{- if .Values.auth.enabled }}
- name: auth
  mountPath: /etc/strata/auth
  readOnly: true
{{- end }}
{{- end -}}

{{/* Native gRPC probes on the plaintext health port. Call with (dict "probes" .probes "port" N). */}}
{{- define "strata.probes" -}}
startupProbe:
  grpc:
    port: {{ .port }}
  periodSeconds: {{ .probes.startup.periodSeconds }}
  failureThreshold: {{ .probes.startup.failureThreshold }}
livenessProbe:
  grpc:
    port: {{ .port }}
  periodSeconds: {{ .probes.liveness.periodSeconds }}
  failureThreshold: {{ .probes.liveness.failureThreshold }}
readinessProbe:
  grpc:
    port: {{ .port }}
  periodSeconds: {{ .probes.readiness.periodSeconds }}
  failureThreshold: {{ .probes.readiness.failureThreshold }}
{{- end -}}
