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
COSMOS_ALLOWED_LOCAL_MEDIA_DIRS COSMOS_ALLOW_RUNTIME_LORA_UPDATING COSMOS_API_KEY COSMOS_API_KEYS
COSMOS_API_KEYS_FILE COSMOS_CPU_KV_CACHE_GIB COSMOS_DEFAULT_MAX_TOKENS
COSMOS_DEFAULT_REPETITION_PENALTY COSMOS_DEFAULT_TEMPERATURE COSMOS_DEFAULT_TOP_K
COSMOS_DEFAULT_TOP_P COSMOS_DTYPE COSMOS_ENABLE_PREFIX_CACHING COSMOS_ENFORCE_EAGER COSMOS_ENGINE
COSMOS_ENGINE_WATCHDOG_INTERVAL_S COSMOS_FETCH_ALLOW_PRIVATE COSMOS_FETCH_CONNECT_TIMEOUT_S
COSMOS_FETCH_MAX_REDIRECTS COSMOS_FETCH_TIMEOUT_S COSMOS_GIL_SWITCH_INTERVAL_S COSMOS_GPU_MEMORY_UTILIZATION
COSMOS_GUARDRAIL_CRITIC COSMOS_GUARDRAIL_CRITIC_MAX_TOKENS COSMOS_GUARDRAIL_CRITIC_PER_REQUEST
COSMOS_GUARDRAIL_CRITIC_SEVERITY COSMOS_GUARDRAIL_POLICY_CRITICAL COSMOS_GUARDRAIL_POLICY_INFO COSMOS_GUARDRAIL_POLICY_WARNING
COSMOS_GUARDRAIL_RULES_PATH COSMOS_HOST COSMOS_IMAGE_MAX_BYTES COSMOS_KV_CACHE_DTYPE
COSMOS_KV_CACHE_MEMORY_BYTES COSMOS_LIMIT_IMAGES_PER_PROMPT COSMOS_LIMIT_VIDEOS_PER_PROMPT
COSMOS_LOAD_FORMAT COSMOS_LOG_FORMAT COSMOS_LOG_LEVEL COSMOS_LORA_MODULES COSMOS_LORA_VISION_TOWER
COSMOS_MAX_CONCURRENT_REQUESTS COSMOS_MAX_LORAS COSMOS_MAX_LORA_RANK COSMOS_MAX_MODEL_LEN
COSMOS_MAX_NUM_SEQS COSMOS_MAX_REQUEST_BODY_BYTES COSMOS_MEDIA_FIRST COSMOS_METRICS_REQUIRE_KEY
COSMOS_MM_PROCESSOR_DEVICE COSMOS_MODEL COSMOS_OVERLOAD_RETRY_AFTER_S COSMOS_PORT COSMOS_PROCESSOR
COSMOS_PROFILE COSMOS_QUANTIZATION COSMOS_REASONING_DEFAULT COSMOS_REQUEST_DEADLINE_S
COSMOS_RETURN_RAW_TEXT COSMOS_SEED COSMOS_SERVED_MODEL_NAME COSMOS_SHUTDOWN_GRACE_S
COSMOS_SSE_KEEPALIVE_INTERVAL_S COSMOS_SYSTEM_PROMPT COSMOS_TENSOR_PARALLEL_SIZE
COSMOS_TRUST_REMOTE_CODE COSMOS_VIDEO_CACHE_BYTES COSMOS_VIDEO_DECODE_PROCESSES COSMOS_VIDEO_DECODE_QUEUE_MAX
COSMOS_VIDEO_DECODE_SPLIT COSMOS_VIDEO_DECODE_THREADS COSMOS_VIDEO_DECODE_TIMEOUT_S
COSMOS_VIDEO_DECODE_WORKERS COSMOS_VIDEO_DECODER COSMOS_VIDEO_FPS COSMOS_VIDEO_MAX_BYTES COSMOS_VIDEO_MAX_DURATION_S
COSMOS_VIDEO_MAX_FRAMES COSMOS_VIDEO_MAX_PIXELS COSMOS_VIDEO_MAX_SOURCE_FRAMES
COSMOS_VIDEO_MAX_SOURCE_PIXELS COSMOS_VIDEO_MIN_FRAMES COSMOS_VIDEO_MIN_PIXELS COSMOS_VIDEO_NFRAMES
COSMOS_VIDEO_NVDEC_BLOCKING_SYNC COSMOS_VIDEO_NVDEC_CPU_CORES COSMOS_VIDEO_NVDEC_DEVICE COSMOS_VIDEO_NVDEC_MAX_DECODES COSMOS_VIDEO_NVDEC_MAX_DECODERS COSMOS_VIDEO_NVDEC_MIN_PIXELS
COSMOS_VIDEO_NVDEC_THREADS COSMOS_VIDEO_TOTAL_PIXELS COSMOS_VIDEO_TRUNCATE_LONG COSMOS_WARMUP_ON_START
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
COSMOS_SHUTDOWN_GRACE_S: lifecycle.shutdownGraceSeconds
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

{{- define "cosmos-serve.image" -}}
"{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
{{- end }}

{{/* preStop, then the server's whole shutdown (COSMOS_SHUTDOWN_GRACE_S), then 10 s to spare. */}}
{{- define "cosmos-serve.terminationGracePeriodSeconds" -}}
{{- $l := .Values.lifecycle }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add (int $l.preStopSleepSeconds) (ceil $l.shutdownGraceSeconds | int) 10 }}
{{- else }}
{{- int .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/* Non-empty when an HPA or KEDA owns the replica count. */}}
{{- define "cosmos-serve.autoscaled" -}}
{{- if or .Values.autoscaling.enabled .Values.autoscaling.keda.enabled }}true{{ end }}
{{- end }}

{{/* The most replicas the release can run: what a ReadWriteOnce claim is checked against. */}}
{{- define "cosmos-serve.maxReplicas" -}}
{{- if include "cosmos-serve.autoscaled" . }}{{ int .Values.autoscaling.maxReplicas }}{{ else }}{{ int .Values.replicaCount }}{{ end }}
{{- end }}

{{/* The startup probe's whole budget plus 10 minutes, unless given. */}}
{{- define "cosmos-serve.progressDeadlineSeconds" -}}
{{- if .Values.progressDeadlineSeconds }}
{{- int .Values.progressDeadlineSeconds }}
{{- else }}
{{- $s := .Values.probes.startup }}
{{- add (mul (int $s.periodSeconds) (int $s.failureThreshold)) 600 }}
{{- end }}
{{- end }}

{{/* model.path is a hub id (anything not an absolute path in the container). */}}
{{- define "cosmos-serve.hubModel" -}}
{{- if not (hasPrefix "/" .Values.model.path) }}true{{ end }}
{{- end }}

{{- define "cosmos-serve.weightsClaim" -}}
{{- .Values.weights.existingClaim | default (printf "%s-weights" (include "cosmos-serve.fullname" .)) }}
{{- end }}

{{/* HF_TOKEN from hf.tokenSecret, for the download init container and the server. */}}
{{- define "cosmos-serve.hfTokenEnv" -}}
{{- with .Values.hf.tokenSecret }}
- name: HF_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.hf.tokenKey }}
{{- end }}
{{- end }}

{{/*
Combinations that cannot work, refused at install time rather than found in a crash loop or a
stuck rollout.
*/}}
{{- define "cosmos-serve.validate" -}}
{{- $v := .Values }}
{{- $gpus := index ($v.resources.limits | default dict) "nvidia.com/gpu" }}
{{- if and $gpus (gt (int $v.model.tensorParallelSize) (int $gpus)) }}
{{- fail (printf "model.tensorParallelSize (%v) needs at least as many GPUs in resources.limits (nvidia.com/gpu: %v)" $v.model.tensorParallelSize $gpus) }}
{{- end }}
{{- $sources := 0 }}
{{- range $on := list $v.weights.existingClaim $v.weights.hostPath $v.weights.persistence.enabled }}
{{- if $on }}{{ $sources = add1 $sources }}{{ end }}
{{- end }}
{{- if gt $sources 1 }}
{{- fail "weights: name one of existingClaim, hostPath or persistence.enabled, not both" }}
{{- end }}
{{- $hub := include "cosmos-serve.hubModel" . }}
{{- if and $hub $v.weights.readOnly }}
{{- fail (printf "weights.readOnly with the hub model %s: the hub cache on /models must be writable (read-only suits a checkpoint directory under /models)" $v.model.path) }}
{{- end }}
{{- if and $v.weights.download.enabled (not $hub) }}
{{- fail (printf "weights.download fetches a hub id; model.path %s is a directory (fill the claim yourself: docs/deploy.md)" $v.model.path) }}
{{- end }}
{{- if and (not $hub) (eq $sources 0) }}
{{- $mounted := false }}
{{- range $v.extraVolumeMounts }}
{{- if hasPrefix .mountPath $v.model.path }}{{ $mounted = true }}{{ end }}
{{- end }}
{{- if not $mounted }}
{{- fail (printf "model.path %s is a directory, but /models is an empty emptyDir: name weights.existingClaim, hostPath or persistence" $v.model.path) }}
{{- end }}
{{- end }}
{{- if and $v.weights.persistence.enabled (has "ReadWriteOnce" $v.weights.persistence.accessModes) (gt (int (include "cosmos-serve.maxReplicas" .)) 1) }}
{{- fail (printf "weights.persistence is ReadWriteOnce but up to %s replicas may run: a second pod on another node can never mount it (use ReadWriteMany or one replica)" (include "cosmos-serve.maxReplicas" .)) }}
{{- end }}
{{- if and $v.autoscaling.enabled $v.autoscaling.keda.enabled }}
{{- fail "autoscaling: enable either the HPA (autoscaling.enabled) or KEDA (autoscaling.keda.enabled): KEDA makes its own HPA" }}
{{- end }}
{{- if include "cosmos-serve.autoscaled" . }}
{{- if gt (int $v.autoscaling.minReplicas) (int $v.autoscaling.maxReplicas) }}
{{- fail (printf "autoscaling.minReplicas (%v) is above maxReplicas (%v)" $v.autoscaling.minReplicas $v.autoscaling.maxReplicas) }}
{{- end }}
{{- end }}
{{- if and $v.autoscaling.enabled (not $v.autoscaling.requestsPerReplica) (not $v.autoscaling.cpuUtilization) }}
{{- fail "autoscaling.enabled needs a metric: autoscaling.requestsPerReplica or autoscaling.cpuUtilization" }}
{{- end }}
{{- if and $v.podDisruptionBudget.enabled (not (kindIs "invalid" $v.podDisruptionBudget.minAvailable)) (not (kindIs "invalid" $v.podDisruptionBudget.maxUnavailable)) }}
{{- fail "podDisruptionBudget: give maxUnavailable or minAvailable, not both (set the other to null)" }}
{{- end }}
{{- $needed := add (int $v.lifecycle.preStopSleepSeconds) (ceil $v.lifecycle.shutdownGraceSeconds | int) }}
{{- if le (int (include "cosmos-serve.terminationGracePeriodSeconds" .)) $needed }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must exceed lifecycle.preStopSleepSeconds plus lifecycle.shutdownGraceSeconds (%d), or the kubelet kills the server mid-drain; null computes it" $v.terminationGracePeriodSeconds $needed) }}
{{- end }}
{{- with $v.hf.tokenSecret }}
{{- range $v.extraEnv }}
{{- if eq .name "HF_TOKEN" }}
{{- fail "HF_TOKEN in extraEnv clashes with hf.tokenSecret: use one" }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
