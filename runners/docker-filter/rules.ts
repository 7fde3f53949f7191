/**
 * The filter's rules for one deployment, from its configuration: what
 * runners/executor asks of the engine, and nothing wider.
 */
import type { Config } from '../../services/config/config.ts';
import { OWNER_LABEL } from '../executor/docker.ts';
import { OVERLAY_DOCKERFILE } from '../executor/warm-base.ts';
import type { FilterRules } from './policy.ts';

export function filterRules(config: Pick<Config, 'mirrorsDir' | 'docker'>): FilterRules {
  return {
    namePrefix: 'patchbay-',
    ownerLabel: OWNER_LABEL,
    imageRepos: ['patchbay/base', 'patchbay/runner', 'patchbay/warm', 'patchbay/job'],
    commitRepos: ['patchbay/warm'],
    // Warm-base builds mount a tree mirror (read-only): <mirrorsDir>/<name>.git.
    bindRoots: [config.mirrorsDir],
    volumes: [config.docker.ccacheVolume],
    devices: ['/dev/kvm'],
    // Its one RUN (rm -rf /opt/patchbay) runs in the warm base, built from the base tree alone.
    overlay: { repo: 'patchbay/job', dockerfile: OVERLAY_DOCKERFILE, args: { WARM: 'patchbay/warm', RUNNER: 'patchbay/runner' } },
  };
}
