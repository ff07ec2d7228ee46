#!/usr/bin/env python3
"""Every load scenario against idbroker on the embedded default, on PostgreSQL
+ Redis (two nodes for deprovision-propagation) and against Dex, interleaved
round by round, one JSON line per run (BENCHMARKS.md, issue 13's table).

usage: bench/side_by_side.py ROUNDS OUT.jsonl     run, appending to OUT.jsonl
       bench/side_by_side.py --table OUT.jsonl  print its runs as Markdown rows

Environment: IDBROKER (binary, default ./idbroker), IDBROKER_LOAD (default
./idbroker-load), DEX (a dex binary built from its v2.45.1 tag), DUR (run
length, default 10s), BENCH_DIR (scratch, default /tmp/idbroker-bench).
Needs PostgreSQL (postgres@127.0.0.1:5432, trust; databases bench_N are
dropped and created) and Redis (127.0.0.1:6379, database 5). Server CPU per
operation is read from /proc; the driver's from its rusage."""
import base64, collections, json, os, re, subprocess, sys, time, tempfile, shutil, urllib.request, signal

BIN = os.environ.get('IDBROKER', './idbroker')
LOAD = os.environ.get('IDBROKER_LOAD', './idbroker-load')
DEX = os.environ.get('DEX', './dex')
SCRATCH = os.environ.get('BENCH_DIR', '/tmp/idbroker-bench')
os.makedirs(SCRATCH, exist_ok=True)
HERE = os.path.dirname(os.path.abspath(__file__))
KEY = 'idb_bench_key_0123456789abcdef0123456789'
# A throw-away master key for the PostgreSQL runs.
MK = base64.b64encode(os.urandom(32)).decode()
DUR = os.environ.get('DUR', '10s')
PG = 'postgres://postgres@127.0.0.1:5432/{}?sslmode=disable'

def loadavg(): return open('/proc/loadavg').read().split()[0]

def cpu(pid):
    f = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf('SC_CLK_TCK')

def wait_ready(url):
    for _ in range(600):
        try:
            urllib.request.urlopen(url, timeout=1); return
        except Exception: time.sleep(0.1)
    raise SystemExit('not ready: ' + url)

def start_broker(port, db, extra={}, issuer_port=None):
    d = tempfile.mkdtemp(prefix='tb', dir=SCRATCH)
    env = dict(os.environ, IDBROKER_BOOTSTRAP_API_KEY=KEY, IDBROKER_ISSUER=f'http://127.0.0.1:{issuer_port or port}',
               IDBROKER_LISTEN=f'127.0.0.1:{port}', IDBROKER_DATABASE_URL=db or f'sqlite://{d}/idb.db')
    for k in ['SCIM','API','LOGIN','TOKEN','LOGIN_TENANT','SSO_CALLBACK']: env['IDBROKER_RATE_LIMIT_'+k] = '0'
    env['IDBROKER_SCIM_TENANT_WRITES'] = '0'  # capacity, not fairness: one tenant's c=8 is the load
    env['IDBROKER_SIGNIN_TENANT_CONCURRENCY'] = '0'  # the same for sign-ins
    if db: env.update(IDBROKER_MASTER_KEY=MK, IDBROKER_REDIS_URL='redis://127.0.0.1:6379/5')
    env.update(extra)
    p = subprocess.Popen([BIN, 'serve', '--dev'], cwd=d, env=env, stdout=open(d+'/log','w'), stderr=subprocess.STDOUT)
    wait_ready(f'http://127.0.0.1:{port}/readyz')
    return p, d

def run(args, pid):
    c0 = cpu(pid) if pid else 0
    t0 = os.times()
    r = subprocess.run([LOAD] + args, capture_output=True, text=True)
    t1 = os.times()
    c1 = cpu(pid) if pid else 0
    drv = (t1.children_user + t1.children_system) - (t0.children_user + t0.children_system)
    out = r.stdout.strip().splitlines()
    rep = None
    for line in out:
        if line.startswith('{'): rep = json.loads(line)
    if rep is None:
        m = re.search(r'(\d+) requests in ([\d.]+)s: (\d+)/s, p50 ([\d.]+\w+), p90 ([\d.]+\w+), p99 ([\d.]+\w+), max ([\d.]+\w+), (\d+) errors', r.stdout)
        if not m: return {'error': (r.stdout + r.stderr)[-400:]}
        rep = {'ops': int(m[1]), 'ops_per_second': float(m[3]), 'p50': m[4], 'p99': m[6], 'errors': int(m[8])}
    ops = rep.get('ops') or 1
    rep['server_cpu_ms'] = (c1 - c0) * 1000 / ops
    rep['driver_cpu_ms'] = drv * 1000 / ops
    return rep

def emit(f, rnd, target, name, c, rep):
    rep.update(round=rnd, target=target, scenario=name, c=c, load=loadavg(), t=time.strftime('%H:%M:%S'))
    f.write(json.dumps(rep) + '\n'); f.flush()
    print(target, name, c, rep.get('ops_per_second'), rep.get('p99'), rep.get('errors'), rep.get('error','')[:200], flush=True)

IDB = [('login-saml', 8, ['-alg','RS256']), ('login-saml-es256', 8, ['-alg','ES256']), ('login-oidc', 8, []),
       ('refresh', 8, []), ('refresh', 1, []), ('scim-create', 8, []), ('scim-patch', 8, []),
       ('deprovision-propagation', 1, []), ('introspect', 64, [])]

def idb_round(f, rnd, target):
    port = 18100 + rnd * 10 + (0 if target == 'embedded' else 5)
    db = None; procs = []
    if target == 'postgres':
        name = f'bench_{rnd}'
        subprocess.run(['psql','-q','-h','127.0.0.1','-U','postgres','test','-c',f'drop database if exists {name}','-c',f'create database {name}'], check=True)
        db = PG.format(name)
    p, d = start_broker(port, db); procs.append((p, d))
    url = f'http://127.0.0.1:{port}'
    url2 = url
    if target == 'postgres':
        p2, d2 = start_broker(port + 1, db, issuer_port=port); procs.append((p2, d2)); url2 = f'http://127.0.0.1:{port+1}'
    try:
        for name, c, extra in IDB:
            sc = name.replace('-es256', '')
            base = ['-scenario', sc, '-url', url, '-api-key', KEY, '-c', str(c)] + extra
            if sc == 'deprovision-propagation': base += ['-url2', url2]
            subprocess.run([LOAD] + base + ['-n', '30'], capture_output=True)  # warm-up
            emit(f, rnd, target, name, c, run(base + ['-duration', DUR, '-json'], p.pid))
        for path in ['/.well-known/openid-configuration', '/.well-known/jwks.json']:
            emit(f, rnd, target, 'GET ' + path, 64, run(['-url', url + path, '-X', 'GET', '-c', '64', '-duration', DUR], p.pid))
    finally:
        for p, d in procs:
            p.send_signal(signal.SIGTERM); p.wait(); shutil.rmtree(d, ignore_errors=True)

def dex_round(f, rnd):
    if os.path.exists('/tmp/dex-bench.db'): os.remove('/tmp/dex-bench.db')
    p = subprocess.Popen([DEX, 'serve', os.path.join(HERE, 'peers', 'dex.yaml')], stdout=open(SCRATCH + '/dex.log','w'), stderr=subprocess.STDOUT)
    wait_ready('http://127.0.0.1:5556/dex/keys')
    url = 'http://127.0.0.1:5556/dex'
    try:
        for name, c in [('peer-login', 8), ('peer-refresh', 1), ('peer-introspect', 64)]:
            base = ['-scenario', name, '-url', url, '-c', str(c)]
            subprocess.run([LOAD] + base + ['-n', '30'], capture_output=True)
            emit(f, rnd, 'dex', name, c, run(base + ['-duration', DUR, '-json'], p.pid))
        for path in ['/.well-known/openid-configuration', '/keys']:
            emit(f, rnd, 'dex', 'GET ' + path, 64, run(['-url', url + path, '-X', 'GET', '-c', '64', '-duration', DUR], p.pid))
    finally:
        p.send_signal(signal.SIGTERM); p.wait()

def table(path):
    rows=collections.OrderedDict()
    for l in open(path):
        d=json.loads(l)
        if 'error' in d: continue
        k=(d['scenario'],d['c'])
        rows.setdefault(k,{}).setdefault(d['target'],[]).append(d)
    def fmt_t(v):
        if isinstance(v,str): return v
        return f"{v*1000:.1f} ms" if v<1 else f"{v:.2f} s"
    def cell(lst):
        if not lst: return '—'
        ops=' / '.join(f"{x['ops_per_second']:,.0f}" for x in lst)
        p99=' / '.join(fmt_t(x['p99']) for x in lst)
        cpu=' / '.join(f"{x['server_cpu_ms']:.2f}" for x in lst)
        return f"{ops} /s; p99 {p99}; server CPU {cpu} ms/op"
    for (sc,c),t in rows.items():
        print(f"| {sc} | {c} | {cell(t.get('embedded'))} | {cell(t.get('postgres'))} | {cell(t.get('dex'))} |")
    loads=[float(json.loads(l)['load']) for l in open(path)]
    print('load', min(loads), max(loads))

if sys.argv[1] == '--table':
    table(sys.argv[2]); sys.exit(0)
ROUNDS = int(sys.argv[1]); OUT = sys.argv[2]
with open(OUT, 'a') as f:
    for rnd in range(1, ROUNDS + 1):
        idb_round(f, rnd, 'embedded')
        dex_round(f, rnd)
        idb_round(f, rnd, 'postgres')
