// CloudSim's PlanetLab day 20110306 through every port (see cloudsim-day.ts); one file per day so
// the days run in parallel.
import { describeCloudsimDay } from './cloudsim-day.js';

describeCloudsimDay('20110306');
