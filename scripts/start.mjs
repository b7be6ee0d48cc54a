// `npm start`: serve fixtures/images on 21 and 63006-63010, as `swfw serve` does.
// Started as root, serve drops to `nobody` once its ports are bound. In a checkout only root can
// enter (a clone under /root, or in a mktemp -d directory), nobody could not read the images or
// the code, and serve would refuse; for this quick start it keeps root instead, and says so. A
// service should not: run it from a directory others can read, or as its own user (README,
// "Least privilege").
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(import.meta.url), '..', '..');
const extra = process.argv.slice(2);
// The fixture images, named explicitly: serve's own default is a production path (/srv/firmware).
// `npm start -- --images DIR` or SWFW_IMAGES serve another directory.
if (!extra.includes('--images') && !process.env.SWFW_IMAGES) extra.unshift('--images', join(root, 'fixtures', 'images'));
const { dropBlocker } = await import('../dist/src/server/privileges.js');
if (!extra.includes('--run-as') && !process.env.SWFW_RUN_AS) {
  const problem = dropBlocker('nobody', [join(root, 'dist'), join(root, 'fixtures', 'images')]);
  if (problem) {
    console.error(`npm start: ${problem}, so this quick start serves as root (--run-as root). A service should not: see the README, "Least privilege".`);
    extra.push('--run-as', 'root');
  }
}
// npm runs this through `sh -c`, and a SIGTERM sent to npm's pid stops npm and sh but not us:
// we would go on serving, adopted by init. So a changed parent means we were left behind, and we
// stop as a SIGTERM would make us (gracefully; the timer keeps nothing alive).
const parent = process.ppid;
const orphanWatch = setInterval(() => {
  if (process.ppid === parent) return;
  clearInterval(orphanWatch); // once: a second SIGTERM would mean "stop at once"
  process.kill(process.pid, 'SIGTERM');
}, 1000).unref();
process.argv = [process.argv[0], join(root, 'dist', 'src', 'cli', 'main.js'), 'serve', ...extra];
await import('../dist/src/cli/main.js');
