//! The compiled decode core of `pipeline`: Confluent wire-format payloads of a flat Avro
//! record decoded into Python values, a batch per call.
//!
//! Every datum is decoded by Apache's `apache-avro` crate from the writer schema parsed once;
//! this module only checks the wire-format header, that no byte is left after the record,
//! and turns the decoded `Value`s into the Python objects fastavro gives for them (str,
//! float, int, bool, None, and an aware UTC `datetime` for the timestamp logical types).

use std::collections::HashMap;
use std::ffi::c_int;
use std::io::{self, Read};

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use chrono::{DateTime, Datelike, Timelike, Utc};
use pyo3::exceptions::{PyImportError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyFloat, PyList, PyString, PyTuple};

/// The wire-format header: the magic byte and a 4-byte schema id.
const HEADER_SIZE: usize = 5;

/// The leading members of CPython's `PyDateTime_CAPI` (`datetime.h`), the capsule the
/// `datetime` module exports. pyo3 leaves this C API out of its stable-ABI (abi3) build and
/// builds datetimes there by calling the class, which alone would cost the whole budget of a
/// record; the capsule and these members are unchanged since Python 3.7.
#[repr(C)]
struct DateTimeCapi {
    date_type: *mut ffi::PyTypeObject,
    datetime_type: *mut ffi::PyTypeObject,
    time_type: *mut ffi::PyTypeObject,
    delta_type: *mut ffi::PyTypeObject,
    tzinfo_type: *mut ffi::PyTypeObject,
    timezone_utc: *mut ffi::PyObject,
    date_from_date: unsafe extern "C" fn(c_int, c_int, c_int, *mut ffi::PyTypeObject)
        -> *mut ffi::PyObject,
    datetime_from_date_and_time: unsafe extern "C" fn(
        c_int,
        c_int,
        c_int,
        c_int,
        c_int,
        c_int,
        c_int,
        *mut ffi::PyObject,
        *mut ffi::PyTypeObject,
    ) -> *mut ffi::PyObject,
}

// SAFETY: the capsule is filled once when `datetime` is imported and never written again; its
// functions are only called with the GIL held (every caller has a `Python` token).
unsafe impl Sync for DateTimeCapi {}

fn datetime_capi() -> PyResult<&'static DateTimeCapi> {
    // SAFETY: `PyCapsule_Import` is in the stable ABI; the capsule lives as long as the
    // interpreter (the `datetime` module is never unloaded).
    let capi = unsafe { ffi::PyCapsule_Import(c"datetime.datetime_CAPI".as_ptr(), 1) };
    if capi.is_null() {
        return Err(PyImportError::new_err("the datetime C API capsule is not available"));
    }
    Ok(unsafe { &*(capi as *const DateTimeCapi) })
}

/// Decodes the payloads of one flat record schema (its fields null, boolean, int, long,
/// double, string, timestamp-millis or timestamp-micros, or unions of these).
#[pyclass(frozen, module = "pipeline_native")]
struct RecordDecoder {
    schema: Schema,
    capi: &'static DateTimeCapi,
}

#[pymethods]
impl RecordDecoder {
    /// A decoder of records written with `schema` (Avro JSON). Raises ValueError if the
    /// schema is not valid Avro or not a flat record of the supported types.
    #[new]
    fn new(schema: &str) -> PyResult<Self> {
        let schema = Schema::parse_str(schema)
            .map_err(|err| PyValueError::new_err(format!("not a valid Avro schema: {err}")))?;
        let Schema::Record(record) = &schema else {
            return Err(PyValueError::new_err("the schema is not a record"));
        };
        for field in &record.fields {
            if !supported(&field.schema) {
                return Err(PyValueError::new_err(format!(
                    "field {:?} has a type this decoder does not read",
                    field.name
                )));
            }
        }
        Ok(Self { schema, capi: datetime_capi()? })
    }

    /// Decode each of `payloads` whose first 5 bytes are one of `headers`: its slot holds
    /// the tuple of the record's field values (in schema order), or a string saying why its
    /// body is malformed. Any other slot (None, not bytes, another header) holds None.
    fn decode_many<'py>(
        &self,
        py: Python<'py>,
        payloads: &Bound<'py, PyAny>,
        headers: Vec<Bound<'py, PyBytes>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let headers: Vec<&[u8]> = headers.iter().map(|header| header.as_bytes()).collect();
        let reader = GenericDatumReader::builder(&self.schema)
            .build()
            .map_err(|err| PyValueError::new_err(err.to_string()))?;
        let mut strings = SharedStrings::default();
        let results = PyList::empty(py);
        for payload in payloads.try_iter()? {
            let payload = payload?;
            let slot = match payload.cast_exact::<PyBytes>() {
                Ok(bytes) => {
                    let bytes = bytes.as_bytes();
                    if bytes.len() >= HEADER_SIZE && headers.contains(&&bytes[..HEADER_SIZE]) {
                        match self.decode(py, &reader, &bytes[HEADER_SIZE..], &mut strings) {
                            Ok(row) => row.into_any(),
                            Err(reason) => PyString::new(py, &reason).into_any(),
                        }
                    } else {
                        py.None().into_bound(py)
                    }
                }
                Err(_) => py.None().into_bound(py),
            };
            results.append(slot)?;
        }
        Ok(results)
    }
}

impl RecordDecoder {
    fn decode<'py>(
        &self,
        py: Python<'py>,
        reader: &GenericDatumReader<'_>,
        body: &[u8],
        strings: &mut SharedStrings<'py>,
    ) -> Result<Bound<'py, PyTuple>, String> {
        let mut body = Body { rest: body, past_end: false };
        let value = reader.read_value(&mut body).map_err(|err| err.to_string())?;
        if body.past_end {
            return Err("the body ends inside the record".to_owned());
        }
        if !body.rest.is_empty() {
            return Err(format!("{} bytes left after the record", body.rest.len()));
        }
        let Value::Record(fields) = value else {
            return Err("the datum is not a record".to_owned());
        };
        let mut values = Vec::with_capacity(fields.len());
        for (_, value) in fields {
            values.push(self.python_value(py, value, strings)?);
        }
        PyTuple::new(py, values).map_err(|err| err.to_string())
    }

    fn python_value<'py>(
        &self,
        py: Python<'py>,
        value: Value,
        strings: &mut SharedStrings<'py>,
    ) -> Result<Bound<'py, PyAny>, String> {
        Ok(match value {
            Value::Null => py.None().into_bound(py),
            Value::Boolean(flag) => PyBool::new(py, flag).to_owned().into_any(),
            Value::Int(number) => number.into_pyobject(py).map_err(|e| e.to_string())?.into_any(),
            Value::Long(number) => number.into_pyobject(py).map_err(|e| e.to_string())?.into_any(),
            Value::Double(number) => PyFloat::new(py, number).into_any(),
            Value::String(text) => strings.get(py, text),
            Value::TimestampMicros(micros) => {
                self.utc_datetime(py, DateTime::from_timestamp_micros(micros), micros, "µs")?
            }
            Value::TimestampMillis(millis) => {
                self.utc_datetime(py, DateTime::from_timestamp_millis(millis), millis, "ms")?
            }
            Value::Union(_, value) => self.python_value(py, *value, strings)?,
            other => return Err(format!("unexpected value {other:?}")),
        })
    }

    fn utc_datetime<'py>(
        &self,
        py: Python<'py>,
        moment: Option<DateTime<Utc>>,
        count: i64,
        unit: &str,
    ) -> Result<Bound<'py, PyAny>, String> {
        let moment = moment
            .filter(|moment| (1..=9999).contains(&moment.year()))
            .ok_or_else(|| {
                format!("timestamp {count} {unit} is outside the years 1 to 9999 of a datetime")
            })?;
        // Each calendar field fits a C int (a month is at most 12, a microsecond below 10^6).
        let capi = self.capi;
        // SAFETY: the GIL is held (`py`); the function returns a new reference or NULL with
        // a Python error set, which `from_owned_ptr_or_err` takes over.
        unsafe {
            let datetime = (capi.datetime_from_date_and_time)(
                moment.year(),
                moment.month() as c_int,
                moment.day() as c_int,
                moment.hour() as c_int,
                moment.minute() as c_int,
                moment.second() as c_int,
                (moment.nanosecond() / 1_000) as c_int,
                capi.timezone_utc,
                capi.datetime_type,
            );
            Bound::from_owned_ptr_or_err(py, datetime).map_err(|err| err.to_string())
        }
    }
}

/// A body being read, remembering whether the reader asked for bytes past its end.
///
/// apache-avro reads a union index or a string cut off by the end of its input as null (a
/// leniency for trailing optional fields); fastavro, and this decoder, call such a body
/// malformed. A whole record never asks for a byte past its end: every read of apache-avro's
/// decoder is exact (a varint byte by byte, 8 bytes of a double, a string's length).
struct Body<'a> {
    rest: &'a [u8],
    past_end: bool,
}

impl Read for Body<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.len() > self.rest.len() {
            self.past_end = true;
        }
        self.rest.read(buf)
    }
}

/// One Python string per distinct text within a batch (sensor ids, types, units and places
/// repeat: sharing them saves a string object per field of most records).
#[derive(Default)]
struct SharedStrings<'py> {
    seen: HashMap<String, Bound<'py, PyString>>,
}

impl<'py> SharedStrings<'py> {
    fn get(&mut self, py: Python<'py>, text: String) -> Bound<'py, PyAny> {
        if let Some(string) = self.seen.get(&text) {
            return string.clone().into_any();
        }
        let string = PyString::new(py, &text);
        self.seen.insert(text, string.clone());
        string.into_any()
    }
}

fn supported(schema: &Schema) -> bool {
    match schema {
        Schema::Null
        | Schema::Boolean
        | Schema::Int
        | Schema::Long
        | Schema::Double
        | Schema::String
        | Schema::TimestampMillis
        | Schema::TimestampMicros => true,
        Schema::Union(union) => union.variants().iter().all(supported),
        _ => false,
    }
}

/// The compiled decode core of `pipeline` (see `pipeline.adapters.avro.codec`).
#[pymodule]
fn pipeline_native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<RecordDecoder>()
}
