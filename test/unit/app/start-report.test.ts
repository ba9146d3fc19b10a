import { expect, test } from 'bun:test';
import { errorReport, finalStartReport, readStartReport, readyReport } from '../../../src/app/start-report.ts';

test('ready with and without a start line, error with its code, nothing yet', () => {
  expect(readStartReport(readyReport('pid 1, listening on 0.0.0.0:80'))).toEqual({ ready: true, line: 'pid 1, listening on 0.0.0.0:80' });
  expect(readStartReport(readyReport(''))).toEqual({ ready: true, line: '' });
  expect(readStartReport(errorReport(2, 'fulcrum: -t: bad'))).toEqual({ ready: false, code: 2, message: 'fulcrum: -t: bad' });
  expect(readStartReport('rea')).toBeNull();
  expect(readStartReport('error 1 half a mess')).toBeNull(); // not a whole line yet
  expect(finalStartReport('')).toEqual({ ready: false, code: null, message: null });
});
