/**
 * Reference data for the API and the CLI: the PlanetLab traces (fetch into a cache, verify
 * against the checksums in data/planetlab.sha256, find). The implementation is in src/data.
 */
export {
  DataError, fetchPlanetlab, isDayVerified, PLANETLAB_SOURCE, planetlabCacheDir, planetlabDays, findPlanetlabDay, planetlabDir,
  type DataErrorCode, type FetchDatasetReport, type FetchPlanetlabOptions, type PlanetlabLookup,
} from '../data/index.js';
