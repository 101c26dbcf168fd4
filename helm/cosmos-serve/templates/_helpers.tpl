{{/* Names and labels. */}}
{{- define "cosmos-serve.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "cosmos-serve.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "cosmos-serve.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "cosmos-serve.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cosmos-serve.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "cosmos-serve.labels" -}}
helm.sh/chart: {{ include "cosmos-serve.chart" . }}
{{ include "cosmos-serve.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "cosmos-serve.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "cosmos-serve.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The model name clients pass, as Settings.model_name derives it. */}}
{{- define "cosmos-serve.servedModelName" -}}
{{- .Values.model.servedModelName | default (.Values.model.path | trimSuffix "/" | splitList "/" | last) }}
{{- end }}

{{/* Where the guardrail rules ConfigMap is mounted, and the file COSMOS_GUARDRAIL_RULES_PATH names. */}}
{{- define "cosmos-serve.guardrailDir" -}}
/etc/cosmos-serve/guardrail
{{- end }}

{{/*
Every environment name cosmos-serve's Settings reads (app/config.py, one COSMOS_<FIELD> per
field): `env` is checked against it because Settings ignores unknown names, so a typo would
otherwise change nothing, silently. tests/deploy/test_helm_chart.py keeps it equal to Settings.
*/}}
{{- define "cosmos-serve.settingsEnvNames" -}}
COSMOS_MODEL COSMOS_SERVED_MODEL_NAME COSMOS_ENGINE COSMOS_DTYPE COSMOS_MAX_MODEL_LEN
COSMOS_QUANTIZATION COSMOS_KV_CACHE_DTYPE COSMOS_TENSOR_PARALLEL_SIZE
COSMOS_GPU_MEMORY_UTILIZATION COSMOS_KV_CACHE_MEMORY_BYTES COSMOS_CPU_KV_CACHE_GIB COSMOS_MAX_NUM_SEQS COSMOS_ENFORCE_EAGER
COSMOS_ENABLE_PREFIX_CACHING COSMOS_LOAD_FORMAT COSMOS_WARMUP_ON_START COSMOS_ENGINE_WATCHDOG_INTERVAL_S
COSMOS_MM_PROCESSOR_DEVICE COSMOS_LIMIT_VIDEOS_PER_PROMPT
COSMOS_LIMIT_IMAGES_PER_PROMPT COSMOS_SEED COSMOS_TRUST_REMOTE_CODE COSMOS_HOST COSMOS_PORT
COSMOS_API_KEY COSMOS_MAX_CONCURRENT_REQUESTS COSMOS_MAX_REQUEST_BODY_BYTES COSMOS_LOG_LEVEL
COSMOS_DEFAULT_MAX_TOKENS COSMOS_DEFAULT_TEMPERATURE COSMOS_DEFAULT_TOP_P
COSMOS_DEFAULT_REPETITION_PENALTY COSMOS_VIDEO_FPS COSMOS_VIDEO_MIN_FRAMES
COSMOS_VIDEO_MAX_FRAMES COSMOS_VIDEO_MIN_PIXELS COSMOS_VIDEO_MAX_PIXELS
COSMOS_VIDEO_TOTAL_PIXELS COSMOS_VIDEO_MAX_BYTES COSMOS_VIDEO_MAX_DURATION_S
COSMOS_VIDEO_TRUNCATE_LONG COSMOS_VIDEO_DECODE_TIMEOUT_S COSMOS_VIDEO_DECODE_WORKERS
COSMOS_VIDEO_DECODE_THREADS COSMOS_VIDEO_CACHE_BYTES COSMOS_FETCH_TIMEOUT_S
COSMOS_FETCH_CONNECT_TIMEOUT_S COSMOS_FETCH_MAX_REDIRECTS COSMOS_FETCH_ALLOW_PRIVATE
COSMOS_ALLOWED_LOCAL_MEDIA_DIRS COSMOS_IMAGE_MAX_BYTES COSMOS_REASONING_DEFAULT
COSMOS_RETURN_RAW_TEXT COSMOS_GUARDRAIL_RULES_PATH COSMOS_GUARDRAIL_POLICY_INFO
COSMOS_GUARDRAIL_POLICY_WARNING COSMOS_GUARDRAIL_POLICY_CRITICAL
{{- end }}

{{/*
The variables the chart sets from its own values, each with the value to use instead. The NIM
names are here because the COSMOS_ variable the chart sets would win over them.
*/}}
{{- define "cosmos-serve.managedEnv" -}}
COSMOS_MODEL: model.path
COSMOS_SERVED_MODEL_NAME: model.servedModelName
COSMOS_QUANTIZATION: model.quantization
COSMOS_MAX_MODEL_LEN: model.maxModelLen
COSMOS_TENSOR_PARALLEL_SIZE: model.tensorParallelSize
COSMOS_PORT: containerPort
COSMOS_API_KEY: apiKey.existingSecret
COSMOS_GUARDRAIL_RULES_PATH: guardrail.rules
COSMOS_GUARDRAIL_POLICY_INFO: guardrail.policy.info
COSMOS_GUARDRAIL_POLICY_WARNING: guardrail.policy.warning
COSMOS_GUARDRAIL_POLICY_CRITICAL: guardrail.policy.critical
NIM_MODEL_NAME: model.path
NIM_SERVED_MODEL_NAME: model.servedModelName
NIM_HTTP_API_PORT: containerPort
{{- end }}

{{/*
An env value as text. Helm reads every number in values as a float, which prints as 2.097152e+08;
whole numbers are printed as integers, lists as JSON (how Settings reads list fields).
*/}}
{{- define "cosmos-serve.envValue" -}}
{{- if and (kindIs "float64" .) (eq . (float64 (int64 .))) }}
{{- int64 . }}
{{- else if or (kindIs "slice" .) (kindIs "map" .) }}
{{- toJson . }}
{{- else }}
{{- toString . }}
{{- end }}
{{- end }}

{{/* Checks `env` and `extraEnv` names, then renders `env` as container env entries. */}}
{{- define "cosmos-serve.userEnv" -}}
{{- $known := regexSplit "\\s+" (include "cosmos-serve.settingsEnvNames" . | trim) -1 }}
{{- $managed := include "cosmos-serve.managedEnv" . | fromYaml }}
{{- $names := keys .Values.env }}
{{- range .Values.extraEnv }}
{{- $names = append $names .name }}
{{- end }}
{{- range $name := $names }}
{{- if hasKey $managed $name }}
{{- fail (printf "%s in env/extraEnv would clash with what the chart sets: use the value %s instead" $name (get $managed $name)) }}
{{- else if and (hasPrefix "COSMOS_" $name) (not (has $name $known)) }}
{{- fail (printf "%s is not a cosmos-serve setting (it would be ignored); docs/deploy.md lists them" $name) }}
{{- end }}
{{- end }}
{{- range $name, $value := .Values.env }}
{{- if kindIs "invalid" $value }}
{{- fail (printf "env.%s has no value" $name) }}
{{- end }}
- name: {{ $name }}
  value: {{ include "cosmos-serve.envValue" $value | quote }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}
