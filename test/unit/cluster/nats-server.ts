/** The cluster tests' server: a real nats-server with JetStream (src-main/jobs/cluster/local-server.ts). */
export { startLocalNatsServer as startNatsServer, type LocalNatsServer as NatsTestServer } from '../../../src-main/jobs/cluster/local-server';
