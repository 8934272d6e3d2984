{{/*
The strata-cachenode pod template, shared by the DaemonSet (storage.type hostPath) and the
StatefulSet (storage.type localPV). Call with the root context.
*/}}
{{- define "strata.cachenode.podTemplate" -}}
{{- $c := .Values.cachenode -}}
{{- $hbm := $c.tiers.hbm -}}
{{- $resources := deepCopy $c.resources -}}
{{- if $hbm.enabled -}}
{{- $limits := default (dict) $resources.limits -}}
{{- $_ := set $limits "nvidia.com/gpu" $hbm.gpus -}}
{{- $_ := set $resources "limits" $limits -}}
{{- end -}}
metadata:
  labels:
    {{- include "strata.selectorLabels" (dict "root" . "component" "cachenode") | nindent 4 }}
    {{- with $c.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $c.podAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  serviceAccountName: {{ include "strata.serviceAccountName" . }}
  automountServiceAccountToken: false
  enableServiceLinks: false
  terminationGracePeriodSeconds: {{ $c.terminationGracePeriodSeconds }}
  {{- if $c.runtimeClassName }}
  runtimeClassName: {{ $c.runtimeClassName }}
  {{- end }}
  {{- if $c.hostIPC }}
  hostIPC: true
  {{- end }}
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: cachenode
      image: {{ include "strata.image" . }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      command: [{{ .Values.image.cachenodeCommand | quote }}]
      args:
        - --listen=0.0.0.0:{{ $c.ports.grpc }}
        - --metrics-listen=0.0.0.0:{{ $c.ports.metrics }}
        - --data-dir=/var/lib/strata
        - --hbm-bytes={{ ternary $hbm.bytes "0" $hbm.enabled }}
        - --dram-bytes={{ $c.tiers.dram.bytes }}
        - --ssd-bytes={{ $c.tiers.ssd.bytes }}
        - --ssd-direct-io={{ $c.tiers.ssd.directIO }}
        - --max-block-bytes={{ $c.maxBlockBytes }}
        - --namespaces={{ join "," $c.namespaces }}
        - --promote-after-hits={{ $c.promoteAfterHits }}
        {{- if $c.resp.enabled }}
        - --resp-listen=0.0.0.0:{{ $c.ports.resp }}
        - --resp-namespace={{ $c.resp.namespace }}
        {{- end }}
        {{- if $c.localSocket.enabled }}
        - --local-socket=/run/strata/{{ $c.localSocket.fileName }}
        - --local-lease-ttl={{ $c.localSocket.leaseTTL }}
        {{- end }}
        {{- if .Values.router.enabled }}
        - --router={{ include "strata.routerAddress" . }}
        - --node-id=$(STRATA_NODE_ID)
        - --advertise=$(POD_IP):{{ $c.ports.grpc }}
        - --heartbeat-interval={{ $c.heartbeatInterval }}
        - --engine-load-ttl={{ $c.engineLoadTTL }}
        {{- if .Values.tls.enabled }}
        - --router-cacert=/etc/strata/tls/{{ .Values.tls.caKey }}
        {{- if .Values.tls.clientAuth }}
        - --router-cert=/etc/strata/tls/{{ .Values.tls.certKey }}
        - --router-key=/etc/strata/tls/{{ .Values.tls.keyKey }}
        {{- end }}
        {{- end }}
        {{- if .Values.auth.enabled }}
        - --router-token-file=/etc/strata/auth/{{ .Values.auth.nodeTokenKey }}
        {{- end }}
        {{- end }}
        {{- with include "strata.serverSecurityArgs" (dict "root" . "healthPort" $c.ports.health) | trim }}{{ . | nindent 8 }}{{ end }}
        {{- range $c.extraArgs }}
        - {{ . | quote }}
        {{- end }}
      env:
        - name: POD_IP
          valueFrom:
            fieldRef:
              fieldPath: status.podIP
        # The node's name at the router: the Kubernetes node for the DaemonSet (its hostPath SSD
        # data belongs to the machine), the pod for the StatefulSet (its PV belongs to the pod).
        - name: STRATA_NODE_ID
          valueFrom:
            fieldRef:
              fieldPath: {{ ternary "spec.nodeName" "metadata.name" (eq $c.storage.type "hostPath") }}
        {{- with $c.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      ports:
        - name: grpc
          containerPort: {{ $c.ports.grpc }}
          protocol: TCP
        - name: health
          containerPort: {{ $c.ports.health }}
          protocol: TCP
        - name: metrics
          containerPort: {{ $c.ports.metrics }}
          protocol: TCP
        {{- if $c.resp.enabled }}
        - name: resp
          containerPort: {{ $c.ports.resp }}
          protocol: TCP
        {{- end }}
      {{- include "strata.probes" (dict "probes" $c.probes "port" $c.ports.health) | nindent 6 }}
      resources:
        {{- toYaml $resources | nindent 8 }}
      securityContext:
        {{- toYaml .Values.containerSecurityContext | nindent 8 }}
      volumeMounts:
        - name: data
          mountPath: /var/lib/strata
        - name: tmp
          mountPath: /tmp
        {{- if $c.localSocket.enabled }}
        - name: local-socket
          mountPath: /run/strata
        {{- end }}
        {{- with include "strata.secretVolumeMounts" . | trim }}{{ . | nindent 8 }}{{ end }}
        {{- with $c.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    {{- with $c.extraContainers }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  volumes:
    {{- if eq $c.storage.type "hostPath" }}
    - name: data
      hostPath:
        path: {{ $c.storage.hostPath.path }}
        type: {{ $c.storage.hostPath.type }}
    {{- end }}
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
    {{- if $c.localSocket.enabled }}
    - name: local-socket
      {{- if eq $c.localSocket.volume "hostPath" }}
      hostPath:
        path: {{ $c.localSocket.hostPath.path }}
        type: {{ $c.localSocket.hostPath.type }}
      {{- else }}
      emptyDir:
        medium: Memory
        sizeLimit: 1Mi
      {{- end }}
    {{- end }}
    {{- with include "strata.secretVolumes" . | trim }}{{ . | nindent 4 }}{{ end }}
    {{- with $c.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $c.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $c.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if eq $c.storage.type "localPV" }}
  affinity:
    {{- /* One agent per node: each owns its node's GPUs, DRAM arena and local disk. */}}
    podAntiAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        - topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "strata.selectorLabels" (dict "root" . "component" "cachenode") | nindent 14 }}
    {{- with $c.affinity.nodeAffinity }}
    nodeAffinity:
      {{- toYaml . | nindent 6 }}
    {{- end }}
  {{- else }}
  {{- with $c.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- end }}
{{- end -}}
