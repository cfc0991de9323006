// SPDX-License-Identifier: BSD-2-Clause
/*
 * manifests.js: deploy/kubernetes checked offline (make manifests-check;
 * tests/package/manifests.t). Prints TAP.
 *
 * Each kustomization's resources are read and every object is validated
 * against the Kubernetes and Prometheus operator schemas of the npm
 * packages kubernetes-models and @kubernetes-models/prometheus-operator
 * (NODE_PATH: installed outside the tree by .ci/run). Then what the schemas
 * cannot say: the hardening asked of every pod, selectors that match, ports
 * that exist, the image tag that is VERSION. Last, the echobench Job's
 * command line, its $(VAR)s filled from its own env (START_AT a few seconds
 * ahead, TARGET a local echod from ECHOD, DURATION short), is run three
 * times at once as the Job's three pods would, and their documents merged
 * with `echobench merge` as the README says.
 */
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn, spawnSync } = require('child_process');
const yaml = require('js-yaml');

const ROOT = path.resolve(__dirname, '..', '..');
const DIR = path.join(ROOT, 'deploy', 'kubernetes');
const VERSION = process.env.VERSION || fs.readFileSync(path.join(ROOT, 'VERSION'), 'utf8').trim();
const ECHOD = process.env.ECHOD || path.join(ROOT, 'build', 'echod');
const ECHOBENCH = process.env.ECHOBENCH || path.join(ROOT, 'build', 'echobench');

let n = 0;
let failed = 0;
function ok(cond, name, detail) {
	n++;
	console.log(`${cond ? 'ok' : 'not ok'} ${n} - ${name}`);
	if (!cond) {
		failed++;
		for (const line of String(detail || '').split('\n'))
			console.error('# ' + line);
	}
	return cond;
}

const MODELS = {
	v1: 'kubernetes-models/v1',
	'apps/v1': 'kubernetes-models/apps/v1',
	'batch/v1': 'kubernetes-models/batch/v1',
	'policy/v1': 'kubernetes-models/policy/v1',
	'monitoring.coreos.com/v1': '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1',
};

function validate(doc) {
	const mod = MODELS[doc.apiVersion];
	if (!mod) throw new Error(`no model for apiVersion ${doc.apiVersion}`);
	const Cls = require(mod)[doc.kind];
	if (!Cls) throw new Error(`no model for ${doc.apiVersion} ${doc.kind}`);
	new Cls(doc).validate();
}

// A kustomization's objects, with its images and labels applied as kustomize
// applies them (the parts of kustomize these files use).
function kustomize(dir) {
	const k = yaml.load(fs.readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8'));
	ok(k.apiVersion === 'kustomize.config.k8s.io/v1beta1' && k.kind === 'Kustomization',
		`${path.relative(ROOT, dir)}/kustomization.yaml is a Kustomization`, JSON.stringify(k));
	const known = new Set(['apiVersion', 'kind', 'resources', 'images', 'labels']);
	const extra = Object.keys(k).filter((x) => !known.has(x));
	ok(extra.length === 0, `... using only fields this test applies`, extra.join(' '));
	const objs = [];
	for (const r of k.resources) {
		const file = path.join(dir, r);
		for (const doc of yaml.loadAll(fs.readFileSync(file, 'utf8')))
			if (doc) objs.push({ file: path.relative(ROOT, file), doc });
	}
	for (const { doc } of objs) {
		for (const l of k.labels || [])
			doc.metadata.labels = Object.assign({}, doc.metadata.labels, l.pairs);
		for (const c of containers(doc)) {
			const img = (k.images || []).find((i) => i.name === c.image);
			if (img) c.image = `${img.newName || img.name}:${img.newTag}`;
		}
	}
	return { k, objs };
}

function podSpec(doc) {
	return doc.spec && doc.spec.template ? doc.spec.template.spec : null;
}
function containers(doc) {
	const s = podSpec(doc);
	return s ? s.containers : [];
}
function matches(selector, labels) {
	return Object.entries(selector).every(([k, v]) => labels && labels[k] === v);
}

const files = new Set();
const all = [];
for (const dir of [DIR, path.join(DIR, 'echobench')]) {
	const { k, objs } = kustomize(dir);
	for (const i of k.images || [])
		ok(i.newTag === VERSION, `${path.relative(ROOT, dir)}: image tag ${i.newTag} is VERSION ${VERSION}`);
	for (const o of objs) {
		files.add(o.file);
		all.push(o);
		let err = null;
		try {
			validate(o.doc);
		} catch (e) {
			err = e;
		}
		ok(!err, `${o.file}: ${o.doc.kind} ${o.doc.metadata.name} validates`,
			err && (err.stack || err.message) + '\n' + JSON.stringify(err.errors || '', null, 1));
	}
}
// Where kubectl is installed, its kustomize must build the same objects.
const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
if (kubectl.status === 0) {
	const key = (d) => `${d.kind}/${d.metadata.name}`;
	const canon = (v) => Array.isArray(v) ? v.map(canon) : v && typeof v === 'object'
		? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canon(v[k])])) : v;
	const sorted = (docs) => JSON.stringify(canon(docs.slice().sort((a, b) => key(a).localeCompare(key(b)))));
	for (const dir of [DIR, path.join(DIR, 'echobench')]) {
		const r = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8' });
		const theirs = r.status === 0 ? yaml.loadAll(r.stdout).filter(Boolean) : [];
		const rel = path.relative(ROOT, dir);
		const ours = all.filter((o) => path.dirname(o.file) === rel).map((o) => o.doc);
		ok(r.status === 0 && sorted(theirs) === sorted(ours), `kubectl kustomize ${rel} builds the objects checked here`,
			r.stderr + '\n' + sorted(theirs) + '\n' + sorted(ours));
	}
} else {
	console.log('# kubectl not installed: kustomize build not compared');
}
const walk = (d) => fs.readdirSync(path.join(DIR, d), { withFileTypes: true })
	.flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]));
const yamls = walk('').filter((f) => /\.ya?ml$/.test(f) && !/kustomization/.test(f));
for (const f of yamls)
	ok(files.has(path.join('deploy', 'kubernetes', f)), `${f} is in a kustomization`);

const find = (kind) => all.find((o) => o.doc.kind === kind).doc;
const deploy = find('Deployment');
const svc = find('Service');
const pdb = find('PodDisruptionBudget');
const sm = find('ServiceMonitor');
const job = find('Job');

for (const d of [deploy, job]) {
	const s = podSpec(d);
	const name = `${d.kind} ${d.metadata.name}`;
	ok(s.securityContext.runAsNonRoot === true && s.securityContext.runAsUser > 0,
		`${name}: runs as a non-root uid`, JSON.stringify(s.securityContext));
	ok(s.securityContext.seccompProfile.type === 'RuntimeDefault', `${name}: seccomp RuntimeDefault`);
	for (const c of s.containers) {
		const sc = c.securityContext || {};
		ok(sc.readOnlyRootFilesystem === true && sc.allowPrivilegeEscalation === false &&
			JSON.stringify(sc.capabilities.drop) === '["ALL"]',
			`${name}: read-only root, no privilege escalation, all capabilities dropped`, JSON.stringify(sc));
		ok(c.resources && c.resources.requests && c.resources.limits && c.resources.limits.memory,
			`${name}: resources requested and memory limited`, JSON.stringify(c.resources));
		ok(c.image === `localhost/echod:${VERSION}`, `${name}: image ${c.image}`);
	}
}

const pod = deploy.spec.template;
const ctr = pod.spec.containers[0];
const cport = (name) => ctr.ports.find((p) => p.name === name);
ok(matches(deploy.spec.selector.matchLabels, pod.metadata.labels), 'Deployment: its selector matches its pods');
ok(ctr.readinessProbe.httpGet.path === '/readyz' && ctr.readinessProbe.httpGet.port === 'metrics' &&
	ctr.livenessProbe.httpGet.path === '/healthz' && ctr.livenessProbe.httpGet.port === 'metrics',
	'Deployment: readiness on /readyz, liveness on /healthz, on the metrics port');
ok(cport('echo').containerPort === 60000 && cport('echo-udp').protocol === 'UDP' &&
	ctr.args.includes('--port=60000') && ctr.args.includes('--udp'),
	'Deployment: echod serves TCP and UDP on the port the pod declares', JSON.stringify(ctr.args));
ok(ctr.args.includes(`--metrics=[::]:${cport('metrics').containerPort}`), 'Deployment: --metrics on the metrics port');
ok(matches(svc.spec.selector, pod.metadata.labels), 'Service: selects echod pods');
const sport = (name) => svc.spec.ports.find((p) => p.name === name);
ok(sport('echo').protocol === 'TCP' && sport('echo-udp').protocol === 'UDP' && sport('echo').port === 7 &&
	sport('echo-udp').port === 7, 'Service: echo port 7 over TCP and UDP');
ok(svc.spec.ports.every((p) => cport(p.targetPort)), 'Service: every targetPort is a named container port');
ok(matches(pdb.spec.selector.matchLabels, pod.metadata.labels), 'PodDisruptionBudget: selects echod pods');
ok(matches(sm.spec.selector.matchLabels, svc.metadata.labels) && sm.spec.endpoints.every((e) => sport(e.port)),
	'ServiceMonitor: selects the Service and names its metrics port');

// The Job: Indexed, one common start, JSON on stdout.
const jc = job.spec.template.spec.containers[0];
ok(job.spec.completionMode === 'Indexed' && job.spec.completions > 1 &&
	job.spec.parallelism === job.spec.completions, 'Job: Indexed, every index at once');
const env = Object.fromEntries(jc.env.map((e) => [e.name, e.value]));
const argv = jc.command.concat(jc.args);
ok(argv.includes('--json') && argv.includes('--start-at=$(START_AT)'), 'Job: --json and --start-at=$(START_AT)');
const svcName = `${svc.metadata.name}:${sport('echo').port}`;
ok(env.TARGET === svcName, `Job: its target is the Service, ${svcName}`, env.TARGET);

// The Job's command line, run here against a local echod.
function runJobLocally(done) {
	const echod = spawn(ECHOD, ['--port', '0', '--grace', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
	let log = '';
	const timer = setTimeout(() => finish('echod did not start: ' + log), 10000);
	function finish(err) {
		clearTimeout(timer);
		echod.kill('SIGTERM');
		done(err);
	}
	echod.stderr.on('data', (d) => {
		log += d;
		const m = /listening on tcp .*:(\d+) \(fd[\s\S]*echod: ready/.exec(log);
		if (!m || echod.started) return;
		echod.started = true;
		clearTimeout(timer);
		const vars = Object.assign({}, env, {
			START_AT: String(Math.ceil(Date.now() / 1000) + 4),
			TARGET: `127.0.0.1:${m[1]}`,
			DURATION: '2',
		});
		const expand = (a) => a.replace(/\$\((\w+)\)/g, (_, v) => vars[v]);
		const bin = jc.command[0] === '/usr/bin/echobench' ? ECHOBENCH : jc.command[0];
		const args = jc.args.map(expand);
		console.log(`# ${job.spec.completions} x echobench ${args.join(' ')}`);
		const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'echod-job-'));
		let left = job.spec.completions;
		const outs = [];
		for (let i = 0; i < job.spec.completions; i++) {
			const p = spawn(bin, args, { env: Object.assign({}, process.env, { JOB_COMPLETION_INDEX: String(i) }) });
			let out = '';
			let err = '';
			p.stdout.on('data', (d) => (out += d));
			p.stderr.on('data', (d) => (err += d));
			p.on('close', (code) => {
				const file = path.join(tmp, `echobench-${i}.json`);
				fs.writeFileSync(file, out);
				outs[i] = { code, out, err, file };
				if (--left === 0) checkRuns(outs, tmp, finish);
			});
		}
	});
}

function checkRuns(outs, tmp, finish) {
	let sum = 0;
	let starts = new Set();
	outs.forEach((o, i) => {
		let doc = null;
		try {
			doc = JSON.parse(o.out);
		} catch (e) {}
		ok(o.code === 0 && doc && !doc.failed && doc.requests > 0,
			`Job index ${i}: exit 0, one JSON document on stdout, ${doc ? doc.requests : 0} echoes`,
			o.err + o.out.slice(0, 500));
		ok(o.err === '', `Job index ${i}: nothing on stderr (kubectl logs mixes it in)`, o.err);
		if (doc) {
			sum += doc.requests;
			starts.add(Math.round(doc.window_start_unix));
		}
	});
	ok(starts.size === 1, 'the three windows began at the same second', [...starts].join(' '));
	const m = spawnSync(ECHOBENCH, ['merge', '--json'].concat(outs.map((o) => o.file)), { encoding: 'utf8' });
	let merged = null;
	try {
		merged = JSON.parse(m.stdout);
	} catch (e) {}
	ok(m.status === 0 && merged && merged.requests === sum && merged.runs.length === outs.length,
		`echobench merge: ${merged ? merged.requests : '?'} echoes, the sum of the three`, m.stderr + m.stdout.slice(0, 500));
	fs.rmSync(tmp, { recursive: true, force: true });
	finish(null);
}

runJobLocally((err) => {
	if (err) ok(false, 'the Job command line runs locally', err);
	console.log(`1..${n}`);
	process.exit(failed ? 1 : 0);
});
