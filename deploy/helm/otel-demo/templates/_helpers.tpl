{{/* Labels of every object of a component: otel-demo.labels (dict "root" $ "component" NAME). */}}
{{- define "otel-demo.labels" -}}
{{ include "otel-demo.selectorLabels" . }}
app.kubernetes.io/part-of: otel-demo
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end }}

{{/* The subset that selects a component's pods (never changes across upgrades). */}}
{{- define "otel-demo.selectorLabels" -}}
app.kubernetes.io/name: {{ .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end }}

{{/* "repository:tag" of images.KEY: otel-demo.image (dict "root" $ "key" "tempo"). */}}
{{- define "otel-demo.image" -}}
{{- $image := index .root.Values.images .key -}}
{{ printf "%s:%s" $image.repository $image.tag }}
{{- end }}

{{/*
Pod security context for an image's own non-root user (the uid its Dockerfile sets), so files
the image owns stay readable, and emptyDir volumes are group-writable for it (fsGroup).
*/}}
{{- define "otel-demo.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ . }}
runAsGroup: {{ . }}
fsGroup: {{ . }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Every container: no privilege escalation, no capabilities, read-only root filesystem. */}}
{{- define "otel-demo.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end }}

{{/* The Secret that holds the credentials: credentials.existingSecret or the chart's own. */}}
{{- define "otel-demo.secretName" -}}
{{ .Values.credentials.existingSecret | default "otel-demo-credentials" }}
{{- end }}

{{/* env entry NAME from the credentials Secret: otel-demo.secretEnv (dict "root" $ "name" NAME). */}}
{{- define "otel-demo.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "otel-demo.secretName" .root }}
      key: {{ .name }}
{{- end }}

{{/* The gateway pods the static resolver lists: host:4317 per replica, or the override. */}}
{{- define "otel-demo.gatewayHostnames" -}}
{{- $hosts := .Values.agent.loadBalancing.staticHostnames -}}
{{- if not $hosts -}}
{{- range $i := until (int .Values.gateway.replicas) -}}
{{- $hosts = append $hosts (printf "otel-collector-gateway-%d.otel-collector-gateway.%s.svc.%s:4317" $i $.Release.Namespace $.Values.clusterDomain) -}}
{{- end -}}
{{- end -}}
{{ toYaml $hosts }}
{{- end }}
